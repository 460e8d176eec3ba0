"""What the sandbox agent hears and sees in an upload: the beat of a track, the cuts of a clip.

Beats: onset strength is the spectral flux of a log-magnitude short-time spectrum; the tempo
is the strongest autocorrelation lag of that envelope (weighted towards ~120 BPM, as people
tap), and the beats are the phase of that period that lands on most onsets, each nudged to
its nearest peak. Scenes: a cut is a frame whose small colour thumbnail differs from the
previous one far more than frames usually do (colour, because two shots can be equally
bright). Both are deterministic for a given file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .media import audio_blocks

RATE = 22050
WINDOW = 1024
HOP = 512
TEMPO_RANGE = (60.0, 180.0)
DEFAULT_TEMPO = 120.0
THUMBNAIL = (64, 36)




def _band_matrix(count: int = 24, low: float = 30.0, high: float = 11000.0) -> np.ndarray:
    """Averages FFT bins into log-spaced bands, so the many treble bins do not outvote the kick."""
    frequencies = np.fft.rfftfreq(WINDOW, 1 / RATE)
    edges = np.geomspace(low, high, count + 1)
    matrix = np.zeros((len(frequencies), count), np.float32)
    for band, (start, stop) in enumerate(zip(edges, edges[1:])):
        inside = (frequencies >= start) & (frequencies < stop)
        if not inside.any():  # bands narrower than a bin take the nearest bin
            inside = np.arange(len(frequencies)) == np.argmin(np.abs(frequencies - (start + stop) / 2))
        matrix[inside, band] = 1.0 / inside.sum()
    return matrix


_BANDS = _band_matrix()


@dataclass(frozen=True)
class Beats:
    tempo: float
    times: list[float] = field(default_factory=list)


def onset_envelope(samples: np.ndarray) -> np.ndarray:
    if samples.size < WINDOW:
        return np.zeros(0, np.float32)
    frames = sliding_window_view(samples, WINDOW)[::HOP] * np.hanning(WINDOW).astype(np.float32)
    spectrum = np.log1p(100 * (np.abs(np.fft.rfft(frames, axis=1)) @ _BANDS))
    flux = np.maximum(0.0, np.diff(spectrum, axis=0, prepend=spectrum[:1])).sum(axis=1)
    # Subtract the local average so a loud passage is not one long onset.
    local = np.convolve(flux, np.ones(16) / 16, mode="same")
    return np.maximum(0.0, flux - local).astype(np.float32)


def _frame_time(index: float) -> float:
    return (index * HOP + WINDOW / 2) / RATE


def estimate_tempo(envelope: np.ndarray) -> float:
    frames_per_second = RATE / HOP
    shortest = int(frames_per_second * 60 / TEMPO_RANGE[1])
    longest = min(int(frames_per_second * 60 / TEMPO_RANGE[0]), len(envelope) - 2)
    if longest <= shortest or not envelope.any():
        return DEFAULT_TEMPO
    centred = envelope - envelope.mean()
    lags = np.arange(shortest, longest + 1)
    correlation = np.array([np.dot(centred[:-lag], centred[lag:]) / (len(centred) - lag) for lag in lags])
    bpm = 60 * frames_per_second / lags
    weighted = correlation * np.exp(-0.5 * (np.log2(bpm / DEFAULT_TEMPO) / 1.0) ** 2)
    best = int(np.argmax(weighted))
    if 0 < best < len(lags) - 1:  # parabolic interpolation between lags
        left, middle, right = weighted[best - 1:best + 2]
        denominator = left - 2 * middle + right
        offset = 0.5 * (left - right) / denominator if denominator else 0.0
    else:
        offset = 0.0
    return round(float(60 * frames_per_second / (lags[best] + offset)), 2)


def track_beats(envelope: np.ndarray, tempo: float) -> list[float]:
    period = RATE / HOP * 60 / tempo
    if len(envelope) < 2:
        return []
    phases = np.arange(0, period, 0.5)
    grid = np.arange(0, len(envelope), period)
    scores = [envelope[np.clip(np.round(phase + grid).astype(int), 0, len(envelope) - 1)].sum() for phase in phases]
    phase = float(phases[int(np.argmax(scores))])
    reach = max(1, int(period * 0.1))
    beats = []
    for expected in np.arange(phase, len(envelope), period):
        low, high = max(0, int(expected) - reach), min(len(envelope), int(expected) + reach + 1)
        window = envelope[low:high]
        index = low + int(np.argmax(window)) if window.any() else expected
        beats.append(round(_frame_time(index), 3))
    return sorted(set(beats))


def beats_of(path: Path) -> Beats:
    blocks = [block[0] for block in audio_blocks(path, RATE, "mono")]
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    envelope = onset_envelope(samples)
    tempo = estimate_tempo(envelope)
    return Beats(tempo, track_beats(envelope, tempo))


def scenes_of(path: Path) -> list[float]:
    """Times (seconds) where the picture cuts to another shot."""
    times, differences, previous = [], [], None
    with av.open(str(path)) as container:
        if not container.streams.video:
            return []
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            thumbnail = frame.reformat(*THUMBNAIL, format="rgb24").to_ndarray().astype(np.int16)
            if previous is not None:
                differences.append(float(np.abs(thumbnail - previous).mean()))
                times.append(frame.time or 0.0)
            previous = thumbnail
    if not differences:
        return []
    usual = float(np.median(differences))
    return [round(time, 3) for time, difference in zip(times, differences)
            if difference > max(12.0, 4 * usual)]
