"""The reference-based deblurring network, its checkpoints and the inference API."""

from .config import ModelConfig, load_config
from .inference import InferenceSettings
from .net import RefDeblurNet, count_parameters
from .restorer import DeviceOutput, Restorer, images_to_tensor, load_model, tensor_to_images
from .weights import read_checkpoint, save_checkpoint

__all__ = [
    "DeviceOutput",
    "InferenceSettings",
    "ModelConfig",
    "RefDeblurNet",
    "Restorer",
    "count_parameters",
    "images_to_tensor",
    "load_config",
    "load_model",
    "read_checkpoint",
    "save_checkpoint",
    "tensor_to_images",
]
