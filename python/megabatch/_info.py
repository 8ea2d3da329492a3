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


def calibrate(*, quick=False, path=None):
    """Measures this machine's backends for megabatch's cost model, saves the result, and uses
    it from now on (the crate's ``Auto::calibrate``, as ``megabatch calibrate`` runs it).

    What it measures, per backend this process started (the CPU, and CUDA and wgpu where
    found) and per dtype: eigh host to host and on device-resident data (a one-matrix call's
    latency and the time per matrix of a large batch, at orders 4 to 128; ``quick``: 4 to
    64 with one timed call per point), the host-to-device staging rate, reduction call
    latency and bytes per second, and attention throughput per kept block at head
    dimensions 64 and 128. ``"auto"`` then picks, per plan, the backend these numbers
    predict fastest (see the repository README's "Auto" section). Seconds on a CPU-only
    machine, about 15 s with CUDA and wgpu (the CUDA attention kernels compile on first use).
    The GIL is released while it runs; do not run other megabatch work meanwhile (it would
    disturb the timings).

    Where it is stored: ``path``, else ``$MEGABATCH_CALIBRATION``, else
    ``<user cache dir>/megabatch/calibration-v<model version>-<hash of the machine key>.json``
    (``~/.cache/megabatch/...`` on Linux): JSON, keyed by CPU model and thread count, GPU
    name, compute capability, wgpu adapter and driver version. Every later process on this
    machine loads it when its backends start (``megabatch.info()["notes"]`` says when a file
    is stale or foreign and was ignored); this process uses it at once.

    Returns
    -------
    dict
        ``path`` (str): the file written. ``seconds`` (float): how long the measurement
        took. ``machine`` (str): the machine key. ``backends`` (list of str): those measured.

    Raises
    ------
    RuntimeError
        A device failure during the measurement, the file cannot be written, or no cache
        directory and no ``path``.
    MemoryError
        A measurement's buffers do not fit.
    """
    return _megabatch._calibrate(quick=bool(quick), path=None if path is None else str(path))
