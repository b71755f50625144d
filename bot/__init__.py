"""Core of the party-branch bot: settings, database, outbox, i18n and services."""

import os

# Opt in to PTB's future behaviour (durations as timedelta) now; our code handles both forms.
os.environ.setdefault("PTB_TIMEDELTA", "1")
