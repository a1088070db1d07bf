"""mlip.kernels: parameter-free functional ops (torch reference, Triton kernel, dispatcher).

Imports only torch and triton. Installed as ``mlip.kernels``; it refuses any other name, because
``kernels`` is also a PyPI package.
"""

if __name__ != "mlip.kernels":
    raise ImportError(
        f"this package must be imported as 'mlip.kernels', not '{__name__}'; "
        "install mlip (pip install -e .) and use `import mlip.kernels`"
    )
