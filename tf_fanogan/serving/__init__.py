"""TF Serving side: a thin client (no TensorFlow runtime) and a local PredictionService server."""
