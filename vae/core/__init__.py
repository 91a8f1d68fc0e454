"""The model itself: config, data, models, losses, training, checkpoints, device, files, errors."""
