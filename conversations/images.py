"""Uploaded images: verified and re-encoded with Pillow, so what we store and serve is a clean image with no
metadata, under an unguessable name. Anything else is refused before a byte is stored.

The work is bounded before Pillow decodes a pixel: the file's size, the canvas's area, and for a GIF its frame
count and the pixels decoded across all its frames, read from a cheap scan of the GIF's block structure (Pillow's
own `n_frames` decodes every frame to count them: 340,000 frames of 1x1 took 57 s and 1 GB). Whatever Pillow
still raises on a hostile file is a 415, never a 500."""
import io
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from conversations.errors import Refused

logger = logging.getLogger(__name__)

FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
# A GIF whose blocks are split finer than this is not from any real encoder (they write 255-byte sub-blocks:
# 10 MB is about 41,000 of them); walking 5 million 1-byte sub-blocks in Python took 1.9 s.
GIF_MAX_SUB_BLOCKS = 100_000
# A progressive JPEG is decoded once per scan, over the whole image: 5,000 scans of 34 bytes made a 1.5 MB,
# 4-megapixel JPEG cost 1 s of CPU (ten times that at 40 megapixels). Encoders write about 10.
JPEG_MAX_SCANS = 100
# Per-frame metadata we keep when re-encoding an animation; comments and application extensions are not.
GIF_FRAME_INFO = ("duration", "transparency")


@dataclass(frozen=True)
class ProcessedImage:
    file: ContentFile
    width: int
    height: int


def _too_large() -> Refused:
    limit = settings.LIVECHAT["IMAGE_MAX_BYTES"] // (1024 * 1024)
    return Refused(_("The image is larger than %(limit)s MB.") % {"limit": limit}, code="too_large", status=413)


def _unsupported(reason: str) -> Refused:
    return Refused(_("%(reason)s Send a JPEG, PNG, GIF or WebP image.") % {"reason": reason},
                   code="unsupported_media_type", status=415)


def _max_pixels(image_format: str) -> int:
    """The canvas area a format may have. WebP decodes and encodes about four times slower than JPEG per pixel, so
    it gets a smaller canvas to keep every accepted upload within IMAGE_MAX_SECONDS (bench/images.py)."""
    limits = settings.LIVECHAT
    return limits.get("IMAGE_MAX_PIXELS_BY_FORMAT", {}).get(image_format, limits["IMAGE_MAX_PIXELS"])


def gif_frame_count(data: bytes, *, max_frames: int) -> int:
    """The number of frames of a GIF, read from its block structure without decoding a pixel; Refused as soon as
    it passes `max_frames`, or when the structure is broken. Cost: one step per block, at most GIF_MAX_SUB_BLOCKS."""
    if len(data) < 13:
        raise _unsupported(_("The GIF is truncated."))
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # after the global colour table
    frames = blocks = 0

    def skip_sub_blocks(at: int) -> int:
        nonlocal blocks
        while True:
            if at >= len(data):
                raise _unsupported(_("The GIF is truncated."))
            size = data[at]
            at += 1 + size
            if size == 0:
                return at
            blocks += 1
            if blocks > GIF_MAX_SUB_BLOCKS:
                raise _unsupported(_("The GIF is not well formed."))

    while position < len(data):
        introducer = data[position]
        if introducer == 0x3B:  # trailer
            break
        if introducer == 0x21:  # extension: label, then sub-blocks
            position = skip_sub_blocks(position + 2)
        elif introducer == 0x2C:  # image descriptor: 9 bytes, local colour table, LZW code size, sub-blocks
            frames += 1
            if frames > max_frames:
                raise _unsupported(_("The animation has more than %(max)s frames.") % {"max": max_frames})
            if position + 10 > len(data):
                raise _unsupported(_("The GIF is truncated."))
            local = data[position + 9]
            position += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            position = skip_sub_blocks(position + 1)
        else:
            break  # what decoders do with trailing garbage: stop reading
    return frames


def image_process(upload) -> ProcessedImage:
    """Verify and re-encode an uploaded file; Refused (413 or 415) when it is not an acceptable image."""
    limits = settings.LIVECHAT
    if upload is None:
        raise Refused(_("An image file is required."), fields={"image": [_("This field is required.")]})
    if upload.size > limits["IMAGE_MAX_BYTES"]:
        raise _too_large()
    data = upload.read(limits["IMAGE_MAX_BYTES"] + 1)
    if len(data) > limits["IMAGE_MAX_BYTES"]:
        raise _too_large()
    try:
        # Only the accepted formats' parsers look at the file: less code facing hostile bytes, and no other
        # plugin's opening cost.
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as probe:
            image_format = probe.format
            width, height = probe.size
            if image_format not in FORMATS:
                raise _unsupported(_("%(format)s files are not accepted.") % {"format": image_format}
                                   if image_format else _("This kind of file is not accepted."))
            if width * height > _max_pixels(image_format):  # checked before decoding a single pixel
                raise _unsupported(_("The image has too many pixels."))
            probe.verify()
        frames = 1
        # Start-of-scan markers: entropy-coded data stuffs every 0xFF, so only a real marker (or one in an embedded
        # thumbnail, which only overcounts) reads FF DA.
        if image_format == "JPEG" and data.count(b"\xff\xda") > JPEG_MAX_SCANS:
            raise _unsupported(_("The JPEG has more than %(max)s scans.") % {"max": JPEG_MAX_SCANS})
        if image_format == "GIF":
            frames = gif_frame_count(data, max_frames=limits["IMAGE_MAX_FRAMES"])
            # Pillow composites every frame onto the whole canvas: that is the work, whatever the frame's own size.
            if frames > 1 and width * height * frames > limits["IMAGE_MAX_ANIMATION_PIXELS"]:
                raise _unsupported(_("The animation has too many pixels."))
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            out = _reencode(image, image_format, frames)
    except Refused:
        raise
    except Exception as error:  # noqa: BLE001  whatever a hostile file makes Pillow raise (OverflowError, MemoryError…)
        logger.info("image refused: %s: %s", type(error).__name__, error)
        raise _unsupported(_("The file is not an image we can read.")) from None  # plain words: no class name
    name = f"{secrets.token_urlsafe(24)}.{FORMATS[image_format]}"
    return ProcessedImage(ContentFile(out, name=name), width, height)


def _reencode(image: Image.Image, image_format: str, frames: int) -> bytes:
    """Pixels only: EXIF (GPS, camera), ICC, text chunks and JPEG/GIF comments are not carried over; orientation is
    applied. Pillow copies `info` (where it keeps a comment) into what it saves, so it is emptied first. Encoder
    settings favour speed: a 40-megapixel image is re-encoded within the time budget."""
    out = io.BytesIO()
    if image_format == "GIF" and frames > 1:
        _reencode_animation(image, frames, out)
        return out.getvalue()
    image.load()
    ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of a 40-megapixel image when upright
    image.info = {key: image.info[key] for key in ("transparency",) if key in image.info}
    if image_format == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=88)
    elif image_format == "WEBP":
        image.save(out, "WEBP", quality=88, method=0)
    elif image_format == "GIF":
        image.save(out, "GIF")
    else:
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            image = image.convert("RGBA")
        image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _reencode_animation(image: Image.Image, frames: int, out: io.BytesIO) -> None:
    """Each frame as Pillow composites it, with its duration and transparency only: a frame's own info would carry
    its comment extension into the saved file."""
    loop = image.info.get("loop")

    def frame(index: int) -> Image.Image:
        image.seek(index)
        copy = image.copy()
        if copy.mode != "P":
            # Pillow hands later frames over in RGB(A); its own palette for them (median cut) cost 5 s for 500
            # frames of 282x282, the fast octree 1 s.
            copy = copy.quantize(method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        copy.info = {key: image.info[key] for key in GIF_FRAME_INFO if key in image.info}
        return copy

    first = frame(0)
    rest = (frame(index) for index in range(1, frames))  # lazily: Pillow keeps its own copy of each frame
    options = {"loop": loop} if loop is not None else {}
    first.save(out, "GIF", save_all=True, append_images=rest, optimize=False, **options)
