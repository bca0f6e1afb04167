"""The artifact contract: the one seam between export and device (metadata.json, the TFLite
runner with its layout and quantization helpers, input specs and ranges, atomic files).
"""
