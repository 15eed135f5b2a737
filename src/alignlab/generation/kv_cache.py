"""A KV cache with room reserved for the tokens still to be decoded.

transformers' ``DynamicLayer`` grows its keys and values with ``torch.cat`` at every decoding step, which
copies the whole cache each time: O(L²) copying over a sample of length L, 7–20% of a CPU decoding step
(measured on SmolLM2-135M and the 5.6M-parameter bench model). :func:`reserve` swaps each plain
``DynamicLayer`` of a cache for a :class:`ReservedLayer` holding a buffer with room for ``extra`` more
positions: a step writes its one position in place and attention reads a view of the filled part. Any other
layer kind (sliding window, quantised, a legacy tuple cache) is left as it is.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

try:  # transformers >= 4.56 (per-layer caches)
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover - older transformers: no reservation, the cache grows as before
    DynamicLayer = None  # type: ignore[assignment,misc]


def reserve(cache: Any, extra: int) -> Any:
    """``cache`` with its plain dynamic layers replaced by :class:`ReservedLayer` s with room for ``extra``
    more positions (in place; returns the cache)."""
    layers = getattr(cache, "layers", None)
    if DynamicLayer is None or layers is None or extra < 1:
        return cache
    for i, layer in enumerate(layers):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys.numel():
            layers[i] = ReservedLayer(layer.keys, layer.values, extra)
    return cache


if DynamicLayer is not None:

    class ReservedLayer(DynamicLayer):  # type: ignore[misc,valid-type]
        """A ``DynamicLayer`` whose keys/values [B, H, S, D] are the first S positions of a buffer
        [B, H, S + extra, D]; past the reserved room it grows by concatenation as ``DynamicLayer`` does."""

        def __init__(self, keys: Tensor, values: Tensor, extra: int):
            super().__init__()
            self.device = keys.device
            self.is_initialized = True
            self._length = keys.shape[-2]
            self._keys = _with_room(keys, extra)
            self._values = _with_room(values, extra)
            self._views()

        def _views(self) -> None:
            self.keys = self._keys[:, :, : self._length]
            self.values = self._values[:, :, : self._length]

        def update(
            self, key_states: Tensor, value_states: Tensor, *args: Any, **kwargs: Any
        ) -> tuple[Tensor, Tensor]:
            new = key_states.shape[-2]
            if self._length + new > self._keys.shape[-2]:
                self._keys = _with_room(self.keys, new + self._keys.shape[-2])
                self._values = _with_room(self.values, new + self._values.shape[-2])
            self._keys[:, :, self._length : self._length + new] = key_states
            self._values[:, :, self._length : self._length + new] = value_states
            self._length += new
            self._views()
            return self.keys, self.values

        def batch_select_indices(self, indices: Tensor) -> None:
            self._keys, self._values = self._keys[indices], self._values[indices]
            self._views()

        def batch_repeat_interleave(self, repeats: int) -> None:
            self._keys = self._keys.repeat_interleave(repeats, dim=0)
            self._values = self._values.repeat_interleave(repeats, dim=0)
            self._views()

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove > 0:
                raise ValueError("crop takes a negative number of positions to remove")
            self._length = max(0, self._length + tokens_to_remove)
            self._views()


def _with_room(states: Tensor, extra: int) -> Tensor:
    b, h, s, d = states.shape
    buffer = states.new_empty(b, h, s + extra, d)
    buffer[:, :, :s] = states
    return buffer
