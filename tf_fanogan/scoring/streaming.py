"""Scoring at production volume: stream files through the detector with flat memory, resumably.

:func:`score_to_csv` reads images a chunk at a time (decoded in parallel threads while the
previous chunk is scored), scores each chunk with the detector's one compiled scoring
function and appends its rows to ``<output>.partial``, flushed and fsynced per chunk. Memory
is bounded by the chunk, not the number of images. If the process dies, the next run with the
same output resumes after the last complete row instead of rescoring; when every image is
done the partial file is renamed to ``<output>`` atomically. Scores are per image and
batch-independent, so a resumed run writes the same numbers an uninterrupted one would.
"""

from __future__ import annotations

import csv
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tf_fanogan.data import images as data_lib
from tf_fanogan.data import tiles
from tf_fanogan import signatures as sig
from tf_fanogan.scoring.rows import format_value
from tf_fanogan.utils.progress import Progress


def list_sources(source: str):
    """``(names, loader)`` for a folder (recursive), a ``.txt`` list of paths (one per line,
    relative to the list) or a ``.npy`` array (memory-mapped); ``loader(i)`` reads item i."""
    if os.path.isdir(source):
        paths = data_lib.list_images(source, recursive=True)
        return paths, lambda i: data_lib.load_image(paths[i])
    if source.endswith(".txt"):
        if not os.path.isfile(source):
            raise data_lib.DataError(f"{source}: no such file")
        base = os.path.dirname(os.path.abspath(source))
        with open(source) as f:
            paths = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        paths = [p if os.path.isabs(p) else os.path.join(base, p) for p in paths]
        if not paths:
            raise data_lib.DataError(f"{source}: lists no images")
        return paths, lambda i: data_lib.load_image(paths[i])
    if source.endswith(".npy"):
        if not os.path.isfile(source):
            raise data_lib.DataError(f"{source}: no such file")
        try:
            arr = np.load(source, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise data_lib.DataError(f"{source}: cannot read array ({e})") from None
        if arr.ndim not in (3, 4):
            raise data_lib.DataError(f"{source}: expected an array (N, H, W[, C]), got shape {arr.shape}")
        return [f"{source}[{i}]" for i in range(len(arr))], lambda i: np.asarray(arr[i])
    return [source], lambda i: data_lib.load_image(source)


def _fingerprint(detector) -> str:
    """Hash of a detector's weights, config and threshold: which model wrote a partial file."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps([detector.config.to_dict(), detector.threshold_], sort_keys=True).encode())
    if detector.holdout_scores_ is not None:
        h.update(np.asarray(detector.holdout_scores_, np.float32).tobytes())
    for net in (detector.generator, detector.critic, detector.encoder):
        for w in net.get_weights():
            h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def _claim(path: str, identity: dict, partial: str) -> None:
    """Records which run a partial output belongs to; refuses to resume another one."""
    import json

    from tf_fanogan.utils.atomic import write_file_atomically

    if os.path.exists(partial) and os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        if previous != identity:
            changed = ", ".join(k for k in identity if previous.get(k) != identity[k])
            raise data_lib.DataError(f"{partial}: an unfinished run with another {changed}; finish it with the same "
                                     f"detector and data, or delete {partial} to start over")
    elif os.path.exists(partial):
        raise data_lib.DataError(f"{partial}: an unfinished run of unknown origin; delete it to start over")
    write_file_atomically(path, lambda f: json.dump(identity, f))


def _done_rows(partial: str, header: list[str]) -> int:
    """Complete rows already in ``partial`` (a torn last line from a kill is cut off)."""
    if not os.path.exists(partial):
        return 0
    with open(partial, "rb+") as f:
        content = f.read()
        end = content.rfind(b"\n") + 1
        if end != len(content):
            f.truncate(end)
            content = content[:end]
    lines = content.decode("utf-8").splitlines()
    if not lines or next(csv.reader([lines[0]])) != header:
        raise data_lib.DataError(f"{partial}: an unfinished run with other columns; delete it to start over")
    return len(lines) - 1


def score_to_csv(detector, source: str, output: str, batch_size: int = 256, chunk_batches: int = 4,
                 on_error: str = "raise", workers: int = 4, progress: bool = True, alpha: float | None = None) -> dict:
    """Scores every image of ``source`` into ``output`` (CSV), streaming and resumable.

    Args:
        detector: A trained :class:`~tf_fanogan.detector.FAnoGAN`.
        source: Folder, ``.txt`` list of paths, ``.npy`` array, or one image.
        output: CSV to write: ``path`` and the score columns (and ``is_anomaly`` if calibrated).
        batch_size: Images per scoring call.
        chunk_batches: Batches read, scored and written per chunk (the memory bound).
        on_error: ``"raise"`` stops at the first unusable image (rows written so far stay in
            ``<output>.partial`` for a resume); ``"skip"`` writes it with its reason to
            ``<output>.errors.csv`` and goes on.
        workers: Threads decoding images.

    Returns:
        Counts: ``scored``, ``resumed`` (rows found from an earlier run), ``errors``,
        ``flagged`` (None if not calibrated), ``seconds``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    names, load = list_sources(source)
    m, policy = detector.config.model, detector.config.data.image_policy()
    tiled = detector.config.data.tile_stride is not None  # images stay at native resolution, scored by tiles
    convert = data_lib.to_unit_native if tiled else data_lib.to_unit_range
    columns = (["path", *sig.SCORE_OUTPUTS] + ([sig.P_VALUE] if detector.holdout_scores_ is not None else [])
               + ([sig.IS_ANOMALY] if detector.threshold_ is not None or alpha is not None else []))
    partial, errors_partial = output + ".partial", output + ".errors.partial"
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    _claim(output + ".partial.json", {"detector": _fingerprint(detector), "source": os.path.abspath(source),
                                      "n_items": len(names), "columns": columns}, partial)
    done = _done_rows(partial, columns)
    error_done = _done_rows(errors_partial, ["path", "reason"]) if os.path.exists(errors_partial) else 0
    start = done + error_done  # items are processed in order; scored and failed ones both count
    if start > len(names):
        raise data_lib.DataError(f"{partial}: holds more rows than {source} has images; delete it to start over")
    t0 = time.perf_counter()
    chunk = batch_size * chunk_batches
    counts = {"scored": 0, "resumed": done, "errors": error_done}

    def read(i):
        try:
            image = convert([load(i)], m.image_size, m.channels, [names[i]], **policy)[0]
            if tiled:  # a stride the image cannot take is this file's error
                try:
                    tiles.tile_positions(image.shape[:2], m.image_size, detector.config.data.tile_stride)
                except ValueError as e:
                    raise data_lib.DataError(f"{names[i]}: {e}") from None
            return image, None
        except data_lib.DataError as e:
            if on_error == "raise":
                raise
            return None, str(e)

    if start and progress:
        print(f"resuming: {start} of {len(names)} images already done in {partial}", file=sys.stderr)
    bar = Progress("scored", len(names), enabled=progress, initial=start)
    try:
        _stream(detector, names, read, columns, partial, errors_partial, start, chunk, batch_size, workers, alpha,
                counts, bar)
    except BaseException:
        if start == 0 and counts["scored"] == 0 and counts["errors"] == 0:  # nothing to keep
            for path in (partial, errors_partial, output + ".partial.json"):
                if os.path.exists(path):
                    os.remove(path)
        raise
    bar.close()
    return _finish(output, partial, errors_partial, counts, source, columns, t0)


def _stream(detector, names, read, columns, partial, errors_partial, start, chunk, batch_size, workers, alpha,
            counts, bar) -> None:
    new_file = not os.path.exists(partial)
    with open(partial, "a", newline="") as out, ThreadPoolExecutor(workers) as pool:
        writer = csv.writer(out)
        if new_file:
            writer.writerow(columns)
        err_file = err_writer = None
        pending = pool.map(read, range(start, min(start + chunk, len(names))))
        for lo in range(start, len(names), chunk):
            hi = min(lo + chunk, len(names))
            results = list(pending)
            if hi < len(names):  # decode the next chunk while this one is scored
                pending = pool.map(read, range(hi, min(hi + chunk, len(names))))
            good = [(i, img) for i, (img, _) in zip(range(lo, hi), results) if img is not None]
            if good:
                x = [img for _, img in good]  # native-resolution images stay a list (tiled scoring)
                x = x if detector.config.data.tile_stride is not None else np.stack(x)
                scores = detector.score(x, batch_size=batch_size, alpha=alpha)
                for j, (i, _) in enumerate(good):
                    writer.writerow([names[i]] + [format_value(scores[c][j]) for c in columns[1:]])
                counts["scored"] += len(good)
            bad = [(names[i], reason) for i, (img, reason) in zip(range(lo, hi), results) if img is None]
            if bad:
                if err_file is None:
                    fresh = not os.path.exists(errors_partial)
                    err_file = open(errors_partial, "a", newline="")
                    err_writer = csv.writer(err_file)
                    if fresh:
                        err_writer.writerow(["path", "reason"])
                err_writer.writerows(bad)
                err_file.flush(); os.fsync(err_file.fileno())
                counts["errors"] += len(bad)
            out.flush(); os.fsync(out.fileno())
            bar.update(hi - lo)
        if err_file is not None:
            err_file.close()


def _finish(output, partial, errors_partial, counts, source, columns, t0) -> dict:
    if os.path.exists(errors_partial):
        os.replace(errors_partial, output + ".errors.csv")
    if counts["scored"] + counts["resumed"] == 0:
        os.remove(partial)
        os.remove(output + ".partial.json")
        raise data_lib.DataError(f"{source}: no image could be scored ({counts['errors']} errors, see "
                                 f"{output}.errors.csv)")
    with open(partial, newline="") as f:  # decisions over all rows, resumed ones included
        counts["flagged"] = (sum(row[-1] == "true" for row in csv.reader(f)) if sig.IS_ANOMALY in columns else None)
    os.replace(partial, output)
    os.remove(output + ".partial.json")
    counts["seconds"] = time.perf_counter() - t0
    return counts


