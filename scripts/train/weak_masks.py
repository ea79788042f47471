"""Weak segmentation labels for real clips, until phantom masks replace them.

No public lung-ultrasound data has pixel masks, so LusNet's segmentation
head is supervised here by image heuristics *gated by the experts' clip
labels*:

* **pleural line**: the brightest smoothed row in the upper half of the
  frame (the pleura lies above the lung and below the chest wall).
* **b_line**: only in clips whose expert label says B-lines are present.
  Below the pleural line, columns whose mean brightness stands well above
  the frame's column median (median + 1.5 MAD, at least 12 grey levels) and
  stays bright down most of the depth: the vertical comet tails of the
  definition.
* **consolidation**: only in clips labelled with consolidation. Below the
  pleural line, in the upper 60 % of the remaining depth, the pixels whose
  smoothed brightness lies between 20 % and 55 % of the region's median:
  hypoechoic, tissue-like areas under a broken pleura. Near-black pixels
  (outside the fan, anechoic fluid) and columns that stay dark to the bottom
  (rib shadows) are excluded.

Everything else is background. Frames of clips with no B-line annotation
(some POCUS files) get no segmentation loss. These masks are noisy by
design; they teach *where* the network should look, while the clip labels
keep them honest. The masks are built at the segmentation head's
resolution (a quarter of the input).
"""
import numpy as np

STRIDE = 4


def _smooth(a, k):
    """Box blur along the last axis with odd window k."""
    pad = k // 2
    padded = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(pad, pad)], mode="edge")
    c = np.cumsum(padded, axis=-1, dtype=np.float64)
    c = np.concatenate([np.zeros(c.shape[:-1] + (1,)), c], axis=-1)
    return (c[..., k:] - c[..., :-k]) / k


def pleural_row(frame):
    rows = _smooth(frame.mean(1)[None], 5)[0]
    upper = rows[: frame.shape[0] // 2]
    return int(np.argmax(upper[4:])) + 4


def weak_mask(frame, b_lines, consolidation):
    """frame: [S, S] uint8 -> [S/4, S/4] int64 class map (0 bg, 1 b_line, 2 consolidation)."""
    f = frame.astype(np.float32)
    s = f.shape[0]
    mask = np.zeros((s, s), np.int64)
    top = min(pleural_row(f) + 4, s - 8)
    below = f[top:]
    if b_lines:
        cols = below.mean(0)
        med = np.median(cols)
        mad = np.median(np.abs(cols - med)) + 1e-3
        bright = cols > med + max(1.5 * mad, 12.0)
        row_med = np.median(below, axis=1, keepdims=True)
        persistent = (below > row_med).mean(0) > 0.6
        mask[top:, bright & persistent] = 1
    if consolidation:
        depth = int((s - top) * 0.6)
        region = f[top : top + depth]
        smooth = _smooth(_smooth(region, 9).T, 9).T
        med = max(np.median(region), 1.0)
        dark = (smooth < 0.55 * med) & (smooth > 0.2 * med)
        shadow = f[top + depth :].mean(0) < 0.3 * max(np.median(f[top:]), 1.0) if depth < s - top else np.zeros(s, bool)
        dark &= ~shadow[None, :]
        # Stay clear of the fan's edge, where blurring mixes tissue and black.
        lit = (f > 8).astype(np.float64)
        inside = _smooth(_smooth(lit, 13).T, 13).T > 0.99
        dark &= inside[top : top + depth]
        sub = mask[top : top + depth]
        sub[dark & (sub == 0)] = 2
    # Majority class per 4x4 cell, background losing ties.
    cells = mask.reshape(s // STRIDE, STRIDE, s // STRIDE, STRIDE).transpose(0, 2, 1, 3).reshape(s // STRIDE, s // STRIDE, -1)
    counts = np.stack([(cells == c).sum(-1) for c in range(3)], -1)
    counts[..., 0] -= 1
    return counts.argmax(-1)
