"""``megabatch.info()``: the backends this process found."""

from . import _megabatch


def info():
    """The backends this process uses, and why the others are missing.

    Starts the backends on the first call (as the first computation does): CPU worker
    threads, a CUDA context if a driver and GPU are found, a wgpu device if a Vulkan adapter
    is (a CPU rasteriser such as lavapipe only when ``MEGABATCH_WGPU_ADAPTER`` names it).

    Returns
    -------
    dict
        ``version`` (str): the crate's version. ``built_with`` (list of str): the backends
        compiled in. ``backends`` (list of str): those started, ``"cpu"`` first.
        ``forced`` (str or None): the backend ``MEGABATCH_BACKEND`` forces. ``cpu_threads``
        (int). ``cuda`` (dict or None): ``name``, ``compute_capability``,
        ``multiprocessors``, ``total_memory`` (bytes), ``driver_version``. ``wgpu`` (dict or
        None): the adapter's ``name``, ``backend``, ``device_type``, ``driver``, ``f64``.
        ``notes`` (list of str): why a backend is missing or lost, one line each.

    Raises
    ------
    ValueError
        ``MEGABATCH_BACKEND`` holds an unknown name.
    RuntimeError
        ``MEGABATCH_BACKEND`` names a backend this machine does not have.
    """
    return _megabatch._info()
