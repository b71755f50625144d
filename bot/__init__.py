"""Core of the party-branch bot: settings, database, outbox, i18n and services."""
