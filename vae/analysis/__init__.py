"""What we measure and draw from a trained model: 2-D maps, metrics, theory, decoded images."""
