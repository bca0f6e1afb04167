"""mobilize's exporter: PyTorch image generators to TFLite files, verified."""
