"""Published extrapolation errors of Alabdulmohsin, Neyshabur, Zhai 2022 ("Revisiting Neural Scaling
Laws in Language and Vision", NeurIPS 2022, arXiv:2209.06640) on the language curves of
``revisiting_lang.csv``: RMSE of log(predicted) - log(observed) on the held-out part (their eq. 4),
for their estimators M1 (power law), M2 (saturating power law), M3 (Bansal et al.'s form) and M4.

Table 2 gives the NMT rows (no error bars: one held-out point, 512M sentence pairs) and the
language-modeling rows, Table 3 the BIG-Bench rows; both as mean ± standard error, of which the
means are kept here.  Read from the paper's NeurIPS 2022 submission text ("Anonymous Author(s)");
the arXiv/camera-ready tables were not reachable to cross-check.  In that text the "6 Enc, 6 Dec"
and "Decoder-only /LM" rows share their M2-M4 values (3.9e-2, 8.9e-2, 1.0e-2), which may be a
copy error in the table.
"""
from __future__ import annotations

SOURCE = ("Alabdulmohsin, Neyshabur, Zhai 2022 (arXiv:2209.06640), Table 2 (NMT, LM) and Table 3 "
          "(BIG-Bench), NeurIPS 2022 submission text")

# curve label (as bench_revisiting.curve_label prints it) -> (M1, M2, M3, M4)
PUBLISHED = {
    "BB ling 1-shot": (1.6e-2, 1.6e-2, 1.6e-2, 1.7e-2),
    "BB ling 2-shot": (1.7e-2, 1.7e-2, 1.7e-2, 9.2e-3),
    "BB qa 1-shot": (4.2e-3, 4.4e-3, 4.2e-3, 4.4e-3),
    "BB qa 2-shot": (4.4e-3, 4.7e-3, 4.4e-3, 4.9e-3),
    "BB unit 1-shot": (8.3e-3, 8.1e-3, 1.5e-3, 2.3e-3),
    "BB unit 2-shot": (1.1e-2, 1.1e-2, 7.5e-3, 2.9e-3),
    "BB mult 1-shot": (1.1e-2, 1.1e-2, 1.1e-2, 1.3e-2),
    "BB mult 2-shot": (1.6e-2, 1.6e-2, 1.6e-2, 6.2e-3),
    "BB date 1-shot": (3.2e-2, 3.2e-2, 4.7e-3, 1.5e-2),
    "BB date 2-shot": (2.9e-2, 2.9e-2, 4.8e-3, 1.8e-2),
    "LM 1.68e+07": (1.5e-2, 6.0e-4, 2.5e-3, 3.1e-4),
    "LM 1.34e+08": (1.6e-2, 1.7e-3, 6.6e-4, 1.9e-3),
    "LM 2.62e+08": (2.3e-2, 1.9e-3, 5.2e-3, 1.8e-3),
    "LM 4.53e+08": (1.7e-2, 7.4e-4, 6.6e-4, 7.5e-4),
    "LM 1.07e+09": (1.7e-2, 1.7e-3, 4.5e-3, 1.3e-3),
    "NMT 6 Enc, 6 Dec": (2.6e-1, 3.9e-2, 8.9e-2, 1.0e-2),
    "NMT 28 Enc, 6 Dec": (1.7e-1, 5.6e-2, 3.3e-2, 1.3e-2),
    "NMT 6 Enc, 28 Dec": (2.3e-1, 5.3e-2, 1.6e-2, 3.0e-2),
    "NMT Dec-only": (2.5e-1, 3.9e-2, 8.9e-2, 1.0e-2),
    "NMT TEnc-LSTM": (1.9e-1, 1.3e-2, 6.2e-2, 1.2e-2),
}
