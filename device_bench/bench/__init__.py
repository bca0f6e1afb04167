"""The bench room: a benchmark session on one device, the app contract, Google's
benchmark_model runner, the on-phone quality gate and the sweep.
"""
