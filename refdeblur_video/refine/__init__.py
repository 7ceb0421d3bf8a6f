"""The steps after the network, on the CPU and in NumPy/OpenCV: the flow-guided reference
transfer (:mod:`.transfer`) and the rounding of the result to the frame's sample type.

The pipeline and the evaluator call :class:`Refiner` on the network's float output; leaving
the transfer out (``--no-transfer``, the evaluator's network-only column) is a
``Refiner(None)``.
"""

from .step import Refiner
from .transfer import DEFAULT_TRANSFER, TransferSettings, transfer_reference

__all__ = ["DEFAULT_TRANSFER", "Refiner", "TransferSettings", "transfer_reference"]
