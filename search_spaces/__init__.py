"""Search spaces: genomes, ArchSpec decoding, model building, the registry, the fixed baselines and model profiles."""
