"""Configuration: structured schemas (ConfigStore) and the Hydra glue."""
