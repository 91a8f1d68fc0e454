"""Latent Explorer's engine: datasets, VAE/AE models, losses, training, checkpoints, maps, metrics.

Pure PyTorch and scikit-learn; nothing here imports streamlit.
"""

__version__ = "0.1.0"
