"""Reading and writing still images as RGB arrays (OpenCV underneath)."""

from __future__ import annotations

import dataclasses
import logging
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .jpeg_segments import SOI, segments
from .photo_extras import PNG_SIGNATURE, PhotoExtras
from .photo_metadata import TIFF_SIGNATURES, PhotoMetadata, exif_orientation, ifd0_tags

log = logging.getLogger("refdeblur_video")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def natural_key(name: str) -> list:
    """Sort key ordering embedded numbers by value (``f2.png`` before ``f10.png``)."""
    return [int(part) if part.isascii() and part.isdigit() else part.lower()
            for part in re.split(r"([0-9]+)", name)]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (may be empty); hidden files
    (a camera card's ``._*`` companions) are left out, as a folder of videos leaves them."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def png_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) of a PNG file from its header alone (a dataset's thousands of frames
    are checked in moments; a damaged body is found when it is read); None for a file that
    is not a PNG."""
    return _png_size(_head(path, 24))


def png_has_alpha(path: str | Path) -> bool:
    """Whether a PNG file's header gives it an alpha channel (grey or colour with alpha);
    False for a file that is not a PNG."""
    head = _head(path, 26)
    return _png_size(head) is not None and len(head) == 26 and head[25] in (4, 6)


def _head(path: str | Path, size: int) -> bytes:
    """A file's first ``size`` bytes (fewer where it is shorter)."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise UserError(f"cannot read image {path}: {exc.strerror or exc}") from None


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return None


# start-of-frame markers, whose segment gives a JPEG's size (not DHT, JPG or DAC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_HEAD_BYTES = 1 << 18  # enough for the EXIF and colour profile segments before it


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) as shown from a PNG's or JPEG's header alone (a JPEG turned by its
    EXIF orientation); None for another format, or a header that does not tell."""
    head = _head(path, _JPEG_HEAD_BYTES)
    if not head.startswith(SOI):
        return _png_size(head)
    orientation = 1
    for marker, payload, _, _ in segments(head):
        if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
            orientation = exif_orientation(payload)
        elif marker in _JPEG_SOF and len(payload) >= 5:
            height, width = struct.unpack(">HH", payload[1:5])
            return (height, width) if orientation >= 5 else (width, height)
    return None


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file: a PNG's from its header (:func:`png_size`), other
    formats by decoding (turned as a viewer shows them)."""
    size = png_size(path)
    if size is not None:
        return size
    image = _decode(path)[0]
    return image.shape[1], image.shape[0]


# a TIFF's first directory's tags for what a photo's metadata holds, by what they are
_TIFF_METADATA_TAGS = {34675: "colour profile", 34665: "EXIF", 700: "XMP"}


def tiff_metadata_names(data: bytes) -> tuple[str, ...]:
    """What of a colour profile, EXIF and XMP a file's bytes hold where they are a TIFF's,
    by its first directory's tags (none for another format, or a TIFF that cannot be
    parsed)."""
    if data[:4] not in TIFF_SIGNATURES:
        return ()
    tags = ifd0_tags(data)
    return tuple(name for tag, name in _TIFF_METADATA_TAGS.items() if tag in tags)


# the first bytes of each format the tool writes, by the suffixes that name it
_SIGNATURES = {(".png",): (PNG_SIGNATURE,), (".jpg", ".jpeg"): (b"\xff\xd8\xff",),
               (".tif", ".tiff"): TIFF_SIGNATURES, (".bmp",): (b"BM",)}


def is_in_format_of(path: str | Path, suffix: str) -> bool:
    """Whether the file at ``path`` is in the format an output named with ``suffix`` is
    written in, by its first bytes (not its name): then a copy of it is such a file."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    kind = suffix.lower()
    if kind == ".webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return any(head.startswith(signatures)
               for suffixes, signatures in _SIGNATURES.items() if kind in suffixes)


_FORMAT_NAMES = {".jpg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".webp": "WebP", ".bmp": "BMP"}

# formats written lossily, at a quality that can be set
QUALITY_SUFFIXES = (".jpg", ".jpeg", ".webp")

# formats that hold 8-bit samples only (a 16-bit photo is written as 8-bit)
EIGHT_BIT_SUFFIXES = (".jpg", ".jpeg", ".webp", ".bmp")

# formats whose files hold a transparency channel (OpenCV writes one from BGRA)
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")


def _decode(path: str | Path) -> tuple[np.ndarray, tuple, tuple]:
    """The file's samples as OpenCV decodes them (H x W grey, or BGR / BGRA), turned as a
    viewer shows them, and its metadata chunks (``cv2.imdecodeWithMetadata``'s types and
    chunks); one line on what is wrong otherwise."""
    return _decode_file(path)[:3]


def _decode_file(path: str | Path) -> tuple[np.ndarray, tuple, tuple, np.ndarray]:
    """:func:`_decode`'s, and the file's bytes (read once: a photo's extras come from
    them too)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # also handles non-ASCII paths
    except OSError as exc:
        raise UserError(f"cannot read image {path}: {exc.strerror or exc}") from None
    image, types, chunks = (cv2.imdecodeWithMetadata(data, cv2.IMREAD_UNCHANGED)
                            if data.size else (None, (), ()))
    if image is None:
        kind = next((suffix for suffix in (".jpg", ".png", ".tif", ".webp", ".bmp")
                     if is_in_format_of(path, suffix)), None)
        if kind is not None:  # its format's signature, but no image: damaged or cut short
            raise UserError(f"cannot read image {path}: it is a {_FORMAT_NAMES[kind]} file, "
                            "but damaged, cut short, or of a kind OpenCV cannot decode")
        raise UserError(f"cannot read image {path} (not an image, or a format OpenCV lacks)")
    if image.dtype not in (np.uint8, np.uint16):
        raise UserError(f"image {path} has unsupported sample type {image.dtype}")
    # OpenCV leaves the samples as stored when it keeps every channel and bit, except in a
    # TIFF (or BigTIFF), whose orientation its decoder applies itself
    if not _is_tiff(data):
        exif = [c for t, c in zip(types, chunks, strict=True)
                if t == cv2.IMAGE_METADATA_EXIF]
        if exif:
            image = _as_shown(image, exif_orientation(np.asarray(exif[0], np.uint8).tobytes()))
    return image, types, chunks, data


def _is_tiff(data: np.ndarray) -> bool:
    """Whether a file's bytes are a TIFF's (or a BigTIFF's)."""
    return bytes(data[:4]) in (*TIFF_SIGNATURES, b"II+\0", b"MM\0+")


# EXIF orientations (2-8) as numpy steps from the stored samples to the picture as shown
_ORIENTED = {
    2: lambda a: a[:, ::-1],  # mirrored
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),  # mirrored and turned
    6: lambda a: np.rot90(a, -1),  # turned a quarter clockwise to be shown upright
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


# and back, from the picture as shown to the samples as stored
_STORED = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, -1),
}


def _as_shown(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored samples turned and mirrored as a viewer shows them (EXIF orientation)."""
    step = _ORIENTED.get(orientation)
    return image if step is None else np.ascontiguousarray(step(image))


def as_stored(image: np.ndarray, orientation: int) -> np.ndarray:
    """The picture as shown turned back to the samples a file of EXIF ``orientation``
    stores (:func:`_as_shown` undone)."""
    step = _STORED.get(orientation)
    return image if step is None else np.ascontiguousarray(step(image))


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def is_grey(image: np.ndarray) -> bool:
    """Whether an image's first three channels are one (grey stored as colour)."""
    return bool((image[..., 0] == image[..., 1]).all()
                and (image[..., 1] == image[..., 2]).all())


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB (``uint8``, or ``uint16`` for 16-bit files)."""
    return _as_rgb(_decode(path)[0])


@dataclass(frozen=True)
class Photo:
    """A photo as a restored one is written back: its samples as shown (RGB), its
    transparency, whether it is grey, and the metadata it keeps."""

    image: np.ndarray
    alpha: np.ndarray | None
    grey: bool
    metadata: PhotoMetadata
    # a TIFF's own metadata, which OpenCV does not read: named so that its loss is said
    tiff_metadata: tuple[str, ...] = ()
    # its pixel density and a PNG's text, which OpenCV neither reads nor writes
    extras: PhotoExtras = PhotoExtras()
    # the EXIF orientation its samples were turned by to be shown (1: as stored)
    orientation: int = 1

    def as_stored(self, image: np.ndarray) -> Photo:
        """``image`` (as this photo is shown) as its file stores its samples, with its
        transparency, EXIF orientation and pixel density turned alike: a restored frame
        of an image sequence then lies as its copied neighbours do."""
        if self.orientation == 1:
            return dataclasses.replace(self, image=image)
        turned = self.orientation >= 5
        density = self.extras.dots_per_metre
        return dataclasses.replace(
            self, image=as_stored(image, self.orientation),
            alpha=None if self.alpha is None else as_stored(self.alpha, self.orientation),
            metadata=self.metadata.oriented(self.orientation), orientation=1,
            extras=dataclasses.replace(self.extras, dots_per_metre=density[::-1])
            if turned and density is not None else self.extras)


def read_photo(path: str | Path) -> Photo:
    """An image file with what a restored photo needs to be written back in its own form."""
    image, types, chunks, raw = _decode_file(path)
    alpha = image[..., 3].copy() if image.ndim == 3 and image.shape[2] == 4 else None
    # OpenCV gives a grey photo with transparency as four channels, its three colours equal
    grey = image.ndim == 2 or (alpha is not None and is_grey(image))
    exif = [np.asarray(c, np.uint8).tobytes()
            for t, c in zip(types, chunks, strict=True) if t == cv2.IMAGE_METADATA_EXIF]
    shown_by = exif_orientation(exif[0]) if exif else 1
    turned = shown_by >= 5
    # a TIFF's decoder applies its orientation itself, and OpenCV writes a TIFF no EXIF
    orientation = 1 if _is_tiff(raw) else shown_by
    data = raw.tobytes()
    extras = PhotoExtras.read(data, turned, exif[0] if exif else None)
    return Photo(_as_rgb(image), alpha, grey, PhotoMetadata.kept_from(types, chunks),
                 tiff_metadata_names(data), extras, orientation)


def write_image(path: str | Path, image: np.ndarray, quality: int | None = None,
                alpha: np.ndarray | None = None, metadata: PhotoMetadata | None = None,
                extras: PhotoExtras | None = None) -> None:
    """Write an RGB (or H x W grey) ``uint8``/``uint16`` array, with ``alpha`` where given
    and the format holds it (:data:`ALPHA_SUFFIXES`), and ``metadata`` and ``extras`` where
    the format holds them; the format follows the suffix (``quality``, 1-100, of JPEG and
    WebP; where None OpenCV's defaults: JPEG 95, WebP lossless)."""
    extras = extras or PhotoExtras()
    path = Path(path)
    suffix = path.suffix.lower()
    if image.dtype == np.uint16 and suffix in EIGHT_BIT_SUFFIXES:
        image = to_uint8(image)
        alpha = None if alpha is None else to_uint8(alpha)
    if image.ndim == 2 and (alpha is None or suffix not in ALPHA_SUFFIXES):
        samples = image
    elif image.ndim == 2:  # OpenCV writes no grey with alpha: its three colours equal
        samples = np.dstack((image, image, image, alpha.astype(image.dtype)))
    elif alpha is not None and suffix in ALPHA_SUFFIXES:
        samples = np.dstack((cv2.cvtColor(image, cv2.COLOR_RGB2BGR), alpha.astype(image.dtype)))
    else:
        samples = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    flag = {".webp": cv2.IMWRITE_WEBP_QUALITY}.get(suffix, cv2.IMWRITE_JPEG_QUALITY)
    params = [flag, quality] if quality is not None and suffix in QUALITY_SUFFIXES else []
    params += extras.encoder_params(suffix)
    ok, data = (metadata or PhotoMetadata()).encode(suffix, samples, params)
    if not ok and metadata:  # the image without what its file carried beside it
        log.warning("the photo's metadata could not be written into %s and is left out",
                    path.suffix)
        ok, data = cv2.imencode(suffix, samples, params)
    if not ok:
        raise UserError(f"cannot encode an image as {path.suffix}")
    # a full disk raises with its errno
    path.write_bytes(extras.written_into(suffix, data.tobytes()))


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB ``uint8``/``uint16`` array as PNG (``path`` ends in ``.png``), creating
    parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, image)


def resize_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downsize (INTER_AREA) so that the longer side is at most ``max_side`` (None: as is)."""
    if not max_side or max(image.shape[:2]) <= max_side:
        return image
    scale = max_side / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def peak_value(dtype: np.dtype) -> float:
    """The white level of an image sample type: 255 for uint8, 65535 for uint16."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    raise UserError(f"unsupported image type {dtype} (expected uint8 or uint16)")


def to_float(image: np.ndarray) -> np.ndarray:
    """An uint8/uint16 image as float32 in [0, 1]."""
    return image.astype(np.float32) / np.float32(peak_value(image.dtype))


def from_float(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float32 in [0, 1] to an image of ``dtype`` (uint8 or uint16), clipped and rounded to
    the nearest value (ties to even)."""
    peak = np.float32(peak_value(np.dtype(dtype)))
    return np.rint(np.clip(image, 0.0, 1.0) * peak).astype(dtype)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """uint16 (full 0..65535 scale) to uint8 as ``round(x * 255 / 65535)``; uint8 unchanged.

    Computed exactly in integers: ``(x + 128) // 257``. Other sample types: :class:`UserError`.
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    raise UserError(f"unsupported pixel type {image.dtype}: expected 8- or 16-bit images")
