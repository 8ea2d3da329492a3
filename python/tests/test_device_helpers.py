"""megabatch._device, the framework helpers of CUDA calls: which stream a call runs on and who
makes its outputs, checked with stand-in objects (the CUDA suite runs them for real)."""

import numpy as np
import pytest

from megabatch import _device


class Stream:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


def test_stream_argument_forms():
    x = np.zeros(3)
    assert _device.stream_handle(x, 5) == 5
    assert _device.stream_handle(x, 0) == 0  # the legacy default stream
    assert _device.stream_handle(x, Stream(cuda_stream=7)) == 7  # torch.cuda.Stream
    assert _device.stream_handle(x, Stream(ptr=9)) == 9  # cupy.cuda.Stream
    # No stream and no known framework: megabatch's own stream.
    assert _device.stream_handle(x, None) is None
    for bad in (True, "fast", 1.5, Stream(cuda_stream="x")):
        with pytest.raises(TypeError, match="stream must be"):
            _device.stream_handle(x, bad)


def test_outputs_of_unknown_producers_need_out():
    with pytest.raises(TypeError, match="pass out="):
        _device.empty(np.zeros(3), (2,), "float32")
