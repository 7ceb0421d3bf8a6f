"""The steps after the network: the flow-guided reference transfer and the rounding of the
result to the frame's sample type. On a CPU in NumPy/OpenCV (:mod:`.transfer`); on a GPU in
PyTorch (:mod:`.torch_transfer`), where the network's output already is.

The pipeline and the evaluator call :class:`Refiner` on the network's float output; leaving
the transfer out (``--no-transfer``, the evaluator's network-only column) is a
``Refiner(None)``; otherwise a ``Refiner(transfer_for(restorer))``, whose settings are the
model's.
"""

from .step import Refiner, restore_step, transfer_for
from .transfer import DEFAULT_TRANSFER, TransferSettings, transfer_reference

__all__ = ["DEFAULT_TRANSFER", "Refiner", "restore_step", "TransferSettings", "transfer_for",
           "transfer_reference"]
