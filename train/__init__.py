"""Datasets and loaders, feature extraction and its cache, augmentation, the trainer, distillation, metrics."""
