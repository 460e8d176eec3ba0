"""A procedurally synthesized music bed: kick, snare, hats, bass and a chord pad at a tempo.

Every sample is a closed-form function of its index (noise comes from a seeded table), so
any stretch renders on its own: the renderer asks for the block under each video frame and
memory stays flat, and the same tempo and seed always give the same music.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .media import AUDIO_RATE

# Chord roots in semitones above the key, one chord a bar (I–V–vi–IV and relatives).
PROGRESSIONS = ((0, 7, 9, 5), (9, 5, 0, 7), (0, 5, 7, 5), (0, 9, 5, 7))
MINOR_DEGREES = {2, 4, 9}


class Groove:
    def __init__(self, tempo: float, seed: int = 0, rate: int = AUDIO_RATE) -> None:
        self.tempo = float(tempo)
        self.rate = rate
        rng = np.random.default_rng(seed)
        self._noise = rng.uniform(-1.0, 1.0, rate).astype(np.float32)
        self._hiss = np.diff(self._noise, append=self._noise[:1])  # a crude high-pass, for hats
        key = int(rng.integers(0, 12))
        progression = PROGRESSIONS[int(rng.integers(0, len(PROGRESSIONS)))]
        roots = 55.0 * 2 ** ((key + np.array(progression)) / 12)
        thirds = np.array([3 if degree in MINOR_DEGREES else 4 for degree in progression])
        self._bass = roots
        # Pad voices an octave and a half above the bass: root, third, fifth.
        self._pad = np.stack([roots * 4, roots * 4 * 2 ** (thirds / 12), roots * 4 * 2 ** (7 / 12)], axis=1)

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo

    def render(self, start: int, count: int) -> np.ndarray:
        """Samples [start, start + count) as float32 (2, count) in -1..1."""
        t = (start + np.arange(count)) / self.rate
        beat = t / self.beat_seconds
        beat_index = np.floor(beat).astype(np.int64)
        since_beat = (beat - beat_index) * self.beat_seconds
        eighth = beat * 2
        since_eighth = (eighth - np.floor(eighth)) * self.beat_seconds / 2
        bar = beat_index // 4
        since_bar = (beat - bar * 4) * self.beat_seconds
        chord = bar % 4

        kick = np.sin(2 * np.pi * (45 * since_beat + 2.5 * (1 - np.exp(-30 * since_beat)))) * np.exp(-9 * since_beat)
        noise_at = (since_beat * self.rate).astype(np.int64) % self.rate
        snare = (0.6 * self._noise[noise_at] + 0.4 * np.sin(2 * np.pi * 185 * since_beat)) * np.exp(-18 * since_beat)
        snare *= beat_index % 2 == 1
        hats = self._hiss[(since_eighth * self.rate).astype(np.int64) % self.rate] * np.exp(-70 * since_eighth)
        bass = np.sin(2 * np.pi * self._bass[chord] * t) * np.exp(-2.5 * since_beat)
        voices = self._pad[chord]  # (count, 3)
        pad = (np.sin(2 * np.pi * voices * t[:, None]) + 0.2 * np.sin(6 * np.pi * voices * t[:, None])).sum(axis=1)
        pad *= np.minimum(1.0, since_bar / 0.08) * (0.55 + 0.45 * np.exp(-1.2 * since_bar))

        core = 0.75 * kick + 0.45 * snare + 0.35 * bass
        left = core + 0.1 * hats + 0.075 * pad
        right = core + 0.14 * hats + 0.065 * pad
        return np.tanh(np.stack([left, right]) * 0.9).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = AUDIO_RATE) -> Path:
    """(channels, n) float samples as a 16-bit PCM WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").T.copy()
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(samples.shape[0])
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(pcm.tobytes())
    return path
