"""How long an image upload takes at the limits (issue 12, point 4): every accepted upload within 2 s.

    .venv/bin/python -m bench.images [--repeat 3]

Builds the costliest files the limits still accept (and a few they refuse), then posts each one to
`POST /api/widget/images` through Django's whole request stack (multipart parsing, Pillow, storage, the
database) on a throwaway SQLite database, and prints the slowest of `--repeat` runs with the machine's load: the
wall time, and the CPU time this process spent (what the upload costs on an idle core; the machine is shared)."""
import argparse
import io
import os
import struct
import tempfile
import time


def _gradient(size, mode="RGB"):
    from PIL import Image

    return Image.linear_gradient("L").resize(size).convert(mode)


def _save(image, image_format, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format, **options)
    return out.getvalue()


def _gif_tiny_frames(count: int) -> bytes:
    """`count` frames of 1x1, written block by block (Pillow would merge identical frames)."""
    from PIL import Image

    single = _save(Image.new("P", (1, 1), 0), "GIF")
    frame = single[single.index(b"\x2c"):-1]
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    return head + (b"\x21\xf9\x04\x00\x02\x00\x00\x00" + frame) * count + b"\x3b"


def _gif_animation(size, count: int) -> bytes:
    from PIL import ImageDraw

    frames = []
    base = _gradient(size).convert("P")
    for index in range(count):
        frame = base.copy()
        ImageDraw.Draw(frame).rectangle((index % size[0], 0, index % size[0] + 20, size[1]), fill=index % 200)
        frames.append(frame)
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)


def _jpeg_scans(data: bytes, total: int) -> bytes:
    """A progressive JPEG with its smallest scan repeated up to `total` scans: each one is decoded over the image."""
    starts = [index for index in range(len(data) - 1) if data[index:index + 2] == b"\xff\xda"]
    scans = [data[start:end] for start, end in zip(starts, starts[1:] + [len(data) - 2])]
    return data[:-2] + min(scans, key=len) * (total - len(scans)) + data[-2:]


def cases(settings) -> list[tuple[str, bytes]]:
    from PIL import Image

    limits = settings.LIVECHAT
    frames = limits["IMAGE_MAX_FRAMES"]
    pixels = limits["IMAGE_MAX_PIXELS"]
    by_format = limits.get("IMAGE_MAX_PIXELS_BY_FORMAT", {})
    webp_pixels, png_pixels = by_format.get("WEBP", pixels), by_format.get("PNG", pixels)
    noisy = Image.effect_noise((8000, 5000), 30).convert("RGB")
    side = int((limits["IMAGE_MAX_ANIMATION_PIXELS"] // frames) ** 0.5)
    webp_side, png_side = int(webp_pixels ** 0.5), int(png_pixels ** 0.5)
    return [
        ("JPEG 8000x5000 (40 MP), noisy", _save(noisy, "JPEG", quality=30)),
        ("JPEG 8000x5000 (40 MP), progressive", _save(noisy, "JPEG", quality=30, progressive=True)),
        ("JPEG 8000x5000 (40 MP), 100 scans", _jpeg_scans(_save(noisy, "JPEG", quality=30, progressive=True), 100)),
        (f"PNG {png_side}x{png_side} ({png_pixels // 10**6} MP) RGBA",
         _save(_gradient((png_side, png_side), "RGBA"), "PNG")),
        ("GIF 8000x5000 (40 MP), one frame", _save(_gradient((8000, 5000), "P"), "GIF")),
        (f"GIF {side}x{side} x {frames} frames", _gif_animation((side, side), frames)),
        (f"GIF 1x1 x {frames} frames", _gif_tiny_frames(frames)),
        (f"WebP {webp_side}x{webp_side} ({webp_pixels // 10**6} MP) lossy",
         _save(_gradient((webp_side, webp_side)), "WEBP", quality=90)),
        (f"WebP {webp_side}x{webp_side} lossless", _save(_gradient((webp_side, webp_side)), "WEBP", lossless=True)),
        ("refused: GIF 1x1 x 340,000 frames (9 MB)", _gif_tiny_frames(340_000)),
        ("refused: GIF 1x1 x 50,000 frames", _gif_tiny_frames(50_000)),
        ("refused: JPEG 2000x2000, 5,000 scans",
         _jpeg_scans(_save(noisy.crop((0, 0, 2000, 2000)), "JPEG", quality=30, progressive=True), 5000)),
        ("refused: WebP 8000x5000", _save(_gradient((8000, 5000)), "WEBP", quality=80, method=0)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    setup_test_environment()
    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="bench-images-")
    connection.creation.create_test_db(verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    origin = "http://127.0.0.1:8000"
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'case':55} {'bytes':>10} {'status':>6} {'wall s':>7} {'cpu s':>6}")
    for name, data in cases(settings):
        slowest, cpu, status = 0.0, 0.0, None
        # A visitor per case: a few uploads each, well within the visitor's send limit.
        token = APIClient().post("/api/widget/sessions", {"site": "demo-shop"}, format="json",
                                 HTTP_ORIGIN=origin).json()["token"]
        for attempt in range(args.repeat):
            upload = SimpleUploadedFile("upload", data, "application/octet-stream")
            started, started_cpu = time.perf_counter(), time.process_time()
            response = APIClient().post("/api/widget/images", {"image": upload, "client_id": f"{name}-{attempt}"},
                                        HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ORIGIN=origin)
            slowest = max(slowest, time.perf_counter() - started)
            cpu = max(cpu, time.process_time() - started_cpu)
            status = response.status_code
        print(f"{name:55} {len(data):>10} {status:>6} {slowest:>7.2f} {cpu:>6.2f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
