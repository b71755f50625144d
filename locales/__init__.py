"""The message catalogs (<locale>/*.yaml), shipped in the wheel as the package `bot.locales`
(see pyproject.toml); this file makes it a regular package, which editable installs need."""
