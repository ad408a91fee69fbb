"""The colorization engine: pure Python + PyTorch, never imports Django.

The web app, the worker and the management commands all go through
`mlcore.inference.Colorizer`; training lives in `mlcore.train`.
"""
