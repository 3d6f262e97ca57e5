"""The match module: Kalman filter + Hungarian matching on embeddings and boxes (NumPy/SciPy)."""
