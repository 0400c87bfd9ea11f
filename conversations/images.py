"""Uploaded images: verified and re-encoded with Pillow, so what we store and serve is a clean image with no
metadata, under an unguessable name. Anything else is refused before a byte is stored."""
import io
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from conversations.errors import Refused

FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}


@dataclass(frozen=True)
class ProcessedImage:
    file: ContentFile
    width: int
    height: int


def _too_large() -> Refused:
    limit = settings.LIVECHAT["IMAGE_MAX_BYTES"] // (1024 * 1024)
    return Refused(f"The image is larger than {limit} MB.", code="too_large", status=413)


def _unsupported(reason: str) -> Refused:
    return Refused(f"{reason} Send a JPEG, PNG, GIF or WebP image.", code="unsupported_media_type", status=415)


def image_process(upload) -> ProcessedImage:
    """Verify and re-encode an uploaded file; Refused (413 or 415) when it is not an acceptable image."""
    if upload is None:
        raise Refused("An image file is required.", fields={"image": ["This field is required."]})
    if upload.size > settings.LIVECHAT["IMAGE_MAX_BYTES"]:
        raise _too_large()
    data = upload.read(settings.LIVECHAT["IMAGE_MAX_BYTES"] + 1)
    if len(data) > settings.LIVECHAT["IMAGE_MAX_BYTES"]:
        raise _too_large()
    try:
        with Image.open(io.BytesIO(data)) as probe:
            image_format = probe.format
            width, height = probe.size
            if image_format not in FORMATS:
                raise _unsupported(f"{image_format or 'This'} files are not accepted.")
            if width * height > settings.LIVECHAT["IMAGE_MAX_PIXELS"]:  # checked before decoding a single pixel
                raise _unsupported("The image has too many pixels.")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            frames = getattr(image, "n_frames", 1)
            if width * height * frames > settings.LIVECHAT["IMAGE_MAX_PIXELS"] * 2:
                raise _unsupported("The animation has too many pixels.")
            out = _reencode(image, image_format)
    except Refused:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise _unsupported("The file is not an image we can read.") from None  # plain words: no class name
    name = f"{secrets.token_urlsafe(24)}.{FORMATS[image_format]}"
    return ProcessedImage(ContentFile(out, name=name), width, height)


def _reencode(image: Image.Image, image_format: str) -> bytes:
    """Pixels only: EXIF (GPS, camera), ICC and text chunks are not carried over; orientation is applied."""
    out = io.BytesIO()
    if image_format == "GIF" and getattr(image, "is_animated", False):
        image.save(out, "GIF", save_all=True, optimize=False)
        return out.getvalue()
    image.load()
    upright = ImageOps.exif_transpose(image)
    if image_format == "JPEG":
        upright.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    elif image_format == "WEBP":
        upright.save(out, "WEBP", quality=88)
    elif image_format == "GIF":
        upright.save(out, "GIF")
    else:
        if upright.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            upright = upright.convert("RGBA")
        upright.save(out, "PNG", optimize=False)
    return out.getvalue()
