"""``fanogan query`` on files: send them in batches, find and name the file a batch failed on.

A batch the server refuses (``INVALID_ARGUMENT``) is retried one file at a time, so the bad
file is named and, with ``on_error="skip"``, the others are still scored. The reason given
is the project's own decoder's (PIL, no TensorFlow runtime needed) where it refuses the file
too, otherwise the server's message.

PNG, JPEG and BMP files are sent as they are. The served graph decodes only those three, so a
file in another format the project's reader takes (TIFF) is decoded here and sent as lossless
PNG (8-bit, or 16-bit grey): it scores as ``fanogan score`` scores it.
"""

from __future__ import annotations

import numpy as np

from tf_fanogan.data.images import DataError, check_image_name, decode_image_bytes
from tf_fanogan.serving.client import InvalidArgument, encode_png


SERVED_FORMATS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM")  # what the exported graph decodes


def _read(path: str) -> bytes:
    check_image_name(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e.strerror or e})") from None
    return data if data.startswith(SERVED_FORMATS) else as_png(data, path)


def as_png(data: bytes, path: str) -> bytes:
    """Encoded image bytes the served graph cannot decode (TIFF) -> lossless PNG bytes (the
    client's :func:`~tf_fanogan.serving.client.encode_png`)."""
    arr = decode_image_bytes(data, path)  # refuses what the in-process reader refuses, naming the file
    try:
        return encode_png(arr)
    except InvalidArgument:
        shape = "x".join(map(str, arr.shape))
        raise DataError(f"{path}: a {arr.dtype} {shape} image has no lossless PNG form to send; score it in process "
                        "(fanogan score) or convert it to 8/16-bit PNG") from None


def _reason(path: str, data: bytes, server_error: InvalidArgument) -> str:
    try:
        decode_image_bytes(data, path)
    except DataError as e:
        return str(e)
    return f"{path}: refused by the server ({server_error.message})"


def query_files(client, paths, batch_size: int = 64, on_error: str = "raise", timeout=None):
    """Scores image files through ``client.score_image_bytes``.

    Returns:
        ``(names, scores, errors)``: the scored paths in input order, their score arrays, and
        ``(path, reason)`` pairs of the files that could not be scored (``on_error="skip"``).

    Raises:
        DataError: with ``on_error="raise"``, naming the first file that cannot be scored.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    names, parts, errors = [], [], []

    def fail(path, reason):
        if on_error == "raise":
            raise DataError(reason)
        errors.append((path, reason))

    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start:start + batch_size]:
            try:
                batch.append((path, _read(path)))
            except DataError as e:
                fail(path, str(e))
        if not batch:
            continue
        try:
            parts.append(client.score_image_bytes([b for _, b in batch], timeout=timeout))
            names += [p for p, _ in batch]
        except InvalidArgument as batch_error:
            for path, data in batch:  # one at a time, to name the file the batch failed on
                try:
                    parts.append(client.score_image_bytes([data], timeout=timeout))
                    names.append(path)
                except InvalidArgument as e:
                    fail(path, _reason(path, data, e if len(batch) > 1 else batch_error))
    scores = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    return names, scores, errors
