"""Training: recipes (``recipe``), the one runner (``runner``), callbacks, KL schedules and search (``tuning``)."""
