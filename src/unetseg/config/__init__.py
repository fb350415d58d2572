"""The params: their schema and checks, loading as DVC reads YAML, presets."""
