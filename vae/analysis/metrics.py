"""The numbers behind "the VAE's latent space is smoother than the AE's".

- `elbo_report`: test ELBO, its two terms, KL per dimension (inactive dims show ~0), and the
  importance-sampled log p(x) estimate (VAE only: an AE defines no q(z|x)).
- `path_smoothness`: decode straight lines between codes; per step, the mean absolute pixel
  change. A smooth space changes the image a little at every step; a space with holes has
  most of the change in one jump, so the worst step is large relative to the mean.
- `prior_report`: decode z ~ N(0, I) (what "sampling" means): the smoothness of lines between
  prior samples.
- `prior_samples_report`: N prior samples decoded and read by the dataset's judge: the share it
  recognises (top probability >= RECOGNISED) and its mean confidence; class coverage (the
  histogram of the judge's top class over all N samples, the classes with >= 2 % share, the
  normalised entropy H / log K: 1 = every class equally often, 0 = one class only); and the
  round-trip error, mean ||mu(decode(z)) - z|| (the AE's mu is its encoder's output), which needs
  no judge.
- `holes_report`: the share of a grid over the data's region whose decodes the judge cannot
  recognise. The region is the box from the 1st to the 99th percentile of the test means along
  each axis of the plane (robust to a few far codes, which an AE can throw anywhere): the latent
  plane itself for a 2-D latent, the line for 1-D, and above 2-D the PCA plane of the means
  through their mean (vae.core.projection), whose grid points are lifted back into z.
- Active units: the dimensions whose mean KL exceeds ACTIVE_KL_NATS (`elbo_report`'s
  active_dims); an AE has no KL term, so it is None there.
- `compare_reports`: a VAE's and an AE's reports side by side, as the Compare page shows them:
  which model each measure favours, a sentence built from the values, a one-line explanation.
- `fill_in_report`: hide part of FILL_IMAGES seeded test images (a mask of images.MASKS) and fill
  it in (images.fill_batch): the mean absolute error on the hidden pixels and the share the judge
  reads as the true class, for the fill with z = mu and, for a VAE, fills with z drawn from
  q(z|x~); `compare_fill_reports` reads two of them side by side, a paired difference within
  NOISE_SE standard errors counting as a tie.

- `mig_score` / `mig_report`: the Mutual Information Gap (Chen et al., 2018) of the means against
  a dataset's true factors (`shapes`), as disentanglement_lib computes it: each code dimension
  cut into MIG_BINS equal-width bins, the mutual information of each with each factor, and per
  factor the gap between its two most informative dimensions over the factor's entropy, averaged
  over the factors: 1 = each factor lives in one dimension alone, 0 = none does.

Without a judge (a dataset without labels) every judge-based number is None and
report["judge"]["note"] says why (NO_JUDGE). The old "distance to the nearest test image" is gone: it
said how close a sample came to some test image, not whether it was recognisable (issue 11).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vae.analysis.judge import RECOGNISED, Judges
from vae.analysis.maps import encode_means
from vae.core.device import model_device
from vae.core.losses import kl_per_dim, log_px_importance
from vae.core.models import LatentModel
from vae.core.train import evaluate_elbo

ACTIVE_KL_NATS = 0.01  # a dimension whose mean KL is below this carries no information
COVERED_SHARE = 0.02  # a class "is covered" by the prior's samples when at least this share of them show it
NO_JUDGE = "no judge: the dataset has no labels"
HOLES_PERCENTILES = (1.0, 99.0)  # the data's region: this percentile box of the test means on the plane
MIG_BINS = 20  # equal-width bins per code dimension (disentanglement_lib's default)
MIG_MAX_FACTOR_VALUES = 64  # a factor with more distinct values is itself cut into MIG_BINS bins


@torch.no_grad()
def kl_per_dimension(model: LatentModel, x: torch.Tensor, batch_size: int = 2048) -> np.ndarray:
    """Mean KL per latent dimension over x, (D,) nats; zeros for the AE."""
    if not model.stochastic:
        return np.zeros(model.latent_dim, dtype=np.float32)
    dev = model_device(model)
    total = torch.zeros(model.latent_dim, device=dev)
    for i in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[i : i + batch_size].to(dev))
        total += kl_per_dim(mu, logvar).sum(0)  # type: ignore[arg-type]
    return (total / x.shape[0]).cpu().numpy()


@torch.no_grad()
def elbo_report(model: LatentModel, x: torch.Tensor, k: int = 100, n_log_px: int = 500, seed: int = 0) -> dict[str, Any]:
    """Test-set ELBO terms (nats per image) and, for a VAE, the K-sample log p(x) estimate."""
    dev = model_device(model)
    gen = torch.Generator(device=dev).manual_seed(seed)
    x = x.to(dev)
    terms = evaluate_elbo(model, x, generator=gen)
    kl_dims = kl_per_dimension(model, x)
    report: dict[str, Any] = {
        "kind": "vae" if model.stochastic else "ae",
        "n_images": int(x.shape[0]),
        "recon": terms["recon"],
        "kl": terms["kl"] if model.stochastic else None,
        "elbo": terms["elbo"] if model.stochastic else None,
        "kl_per_dim": [float(v) for v in kl_dims],
        "active_dims": int((kl_dims > ACTIVE_KL_NATS).sum()) if model.stochastic else None,  # an AE has no KL
        "log_px": None,
        "log_px_k": None,
    }
    if model.stochastic and k > 0:
        sub = x[: min(n_log_px, x.shape[0])]
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            report["log_px"] = float(log_px_importance(model, sub, k=k).mean())
        report["log_px_k"] = k
    return report


@torch.no_grad()
def path_smoothness(model: LatentModel, starts: torch.Tensor, ends: torch.Tensor, steps: int = 16) -> dict[str, float]:
    """Decode straight lines z(t) = (1 - t) a + t b, t in [0, 1] in `steps` steps, for each row pair.

    Returns mean_step (mean absolute pixel change per step, averaged over steps and paths),
    worst_step (the largest step of each path, averaged over paths) and jump_ratio
    (worst / mean step of each path, averaged; 1 means perfectly even change).
    """
    dev = model_device(model)
    t = torch.linspace(0, 1, steps + 1, device=dev).view(1, -1, 1)
    a, b = starts.to(dev).unsqueeze(1), ends.to(dev).unsqueeze(1)
    z = (1 - t) * a + t * b  # (P, steps + 1, D)
    images = model.decode(z.reshape(-1, z.shape[-1])).reshape(z.shape[0], steps + 1, -1)
    step_change = (images[:, 1:] - images[:, :-1]).abs().mean(-1)  # (P, steps)
    mean_per_path = step_change.mean(1)
    worst_per_path = step_change.max(1).values
    return {
        "mean_step": float(mean_per_path.mean()),
        "worst_step": float(worst_per_path.mean()),
        "jump_ratio": float((worst_per_path / mean_per_path.clamp_min(1e-12)).mean()),
    }


@torch.no_grad()
def interpolation_smoothness(model: LatentModel, x: torch.Tensor, n_pairs: int = 64, steps: int = 16, seed: int = 0) -> dict[str, float]:
    """`path_smoothness` between the codes (means) of seeded random pairs of test images."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(x.shape[0], size=(n_pairs, 2), replace=x.shape[0] < 2 * n_pairs)
    mu = torch.from_numpy(encode_means(model, x[torch.from_numpy(idx.reshape(-1))])).reshape(n_pairs, 2, -1)
    return path_smoothness(model, mu[:, 0], mu[:, 1], steps)


@torch.no_grad()
def prior_report(model: LatentModel, n_samples: int = 256, steps: int = 16, seed: int = 0) -> dict[str, float]:
    """The smoothness of lines between pairs of prior samples z ~ N(0, I) (`path_smoothness`)."""
    dev = model_device(model)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n_samples, model.latent_dim, generator=gen).to(dev)
    half = n_samples // 2
    return path_smoothness(model, z[:half], z[half : 2 * half], steps)


@torch.no_grad()
def _decode(model: LatentModel, z: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """z (N, D) -> decoded images (N, C, H, W) on the CPU, decoded batch by batch on the model's device."""
    dev = model_device(model)
    return torch.cat([model.decode(z[i : i + batch_size].to(dev)).cpu() for i in range(0, z.shape[0], batch_size)])


def class_coverage(classes: np.ndarray, n_classes: int) -> dict[str, Any]:
    """The histogram of class labels (N,) over n_classes, the number of classes with a share of
    at least COVERED_SHARE, and the normalised entropy of the histogram (entropy / log K; 0 for K = 1)."""
    counts = np.bincount(np.asarray(classes, dtype=np.int64), minlength=n_classes)[:n_classes]
    share = counts / max(int(counts.sum()), 1)
    nonzero = share[share > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum())
    return {
        "class_share": [float(v) for v in share],
        "classes_covered": int((share >= COVERED_SHARE).sum()),
        "class_entropy": entropy / float(np.log(n_classes)) if n_classes > 1 else 0.0,
    }


@torch.no_grad()
def round_trip_error(model: LatentModel, z: torch.Tensor) -> float:
    """Mean ||mu(decode(z)) - z|| (Euclidean, in latent units) over the rows of z: 0 when encoding
    a decode gives back its z. For the AE mu is its encoder's output."""
    dev = model_device(model)
    errors = []
    for i in range(0, z.shape[0], 1024):
        zb = z[i : i + 1024].to(dev)
        mu, _ = model.encode(model.decode(zb))
        errors.append((mu - zb).norm(dim=1).cpu())
    return float(torch.cat(errors).mean())


@torch.no_grad()
def prior_samples_report(model: LatentModel, judge: Judges | None, n_samples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Decode n_samples seeded z ~ N(0, I); the judge's reading of them (None without a judge) and
    the round-trip error on the same z. Class coverage counts every sample's top class."""
    z = torch.randn(n_samples, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    report: dict[str, Any] = {
        "n_samples": n_samples,
        "recognised": None,
        "mean_confidence": None,
        "n_classes": None,
        "class_share": None,
        "classes_covered": None,
        "class_entropy": None,
        "round_trip": round_trip_error(model, z),
    }
    if judge is None:
        return report
    verdict = judge.judge(_decode(model, z))
    n_classes = len(judge.class_names)
    report.update(
        recognised=float((verdict.confidence >= RECOGNISED).mean()),
        mean_confidence=float(np.mean(verdict.confidence)),
        n_classes=n_classes,
        **class_coverage(verdict.classes, n_classes),
    )
    return report


def holes_grid(mu: np.ndarray, grid: int = 32) -> tuple[np.ndarray, str]:
    """Latent means (N, D) -> the latent points (M, D) of a grid over the data's region and the
    plane it lies on ("line", "latent" or "pca"). The region is the HOLES_PERCENTILES box of the
    means on the plane; a 1-D latent gets `grid` points along its line, a plane grid x grid."""
    mu = np.asarray(mu, dtype=np.float32)
    lo_p, hi_p = HOLES_PERCENTILES
    if mu.shape[1] == 1:
        lo, hi = np.percentile(mu[:, 0], [lo_p, hi_p])
        return np.linspace(lo, hi, grid, dtype=np.float32).reshape(-1, 1), "line"
    pca = None
    if mu.shape[1] == 2:
        points = mu
    else:
        from vae.core.projection import fit_pca

        pca = fit_pca(mu)
        points = pca.transform(mu)
    lo, hi = np.percentile(points, [lo_p, hi_p], axis=0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    plane = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    if pca is None:
        return plane, "latent"
    return np.asarray(pca.inverse_transform(plane), dtype=np.float32), "pca"


@torch.no_grad()
def holes_report(model: LatentModel, x: torch.Tensor, judge: Judges | None, grid: int = 32) -> dict[str, Any]:
    """The share of a grid over the data's region (`holes_grid`) whose decodes the judge does not
    recognise (None without a judge)."""
    z, plane = holes_grid(encode_means(model, x), grid)
    share = None
    if judge is not None:
        share = float((judge.judge(_decode(model, torch.from_numpy(z))).confidence < RECOGNISED).mean())
    return {"share": share, "points": int(z.shape[0]), "plane": plane, "region": "1st-99th percentile box of the test means"}


def latent_measures(model: LatentModel, x_test: torch.Tensor, judge: Judges | None, seed: int = 0) -> dict[str, Any]:
    """The judge-based measures and the round trip: report["prior_samples"], ["holes"], ["judge"]."""
    return {
        "prior_samples": prior_samples_report(model, judge, seed=seed),
        "holes": holes_report(model, x_test, judge),
        "judge": {"available": judge is not None, "note": None if judge is not None else NO_JUDGE},
    }


def full_report(
    model: LatentModel, x_test: torch.Tensor, k: int = 100, seed: int = 0, judge: Judges | None = None,
    factors: torch.Tensor | None = None, factor_names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Everything above in one JSON-able dict (stored in checkpoints as the final test metrics).
    `judge` is the dataset's judge (`judge_or_none(data)`); without one the judge-based numbers are None.
    `factors` (N, K) of x_test with their names (a dataset with known factors): report["mig"], else None."""
    report = elbo_report(model, x_test, k=k, seed=seed)
    report["interpolation"] = interpolation_smoothness(model, x_test, seed=seed)
    report["prior"] = prior_report(model, seed=seed)
    report.update(latent_measures(model, x_test, judge, seed=seed))
    report["mig"] = mig_report(model, x_test, factors, factor_names) if factors is not None and factor_names else None
    return report


def _discretise(values: np.ndarray, bins: int) -> np.ndarray:
    """(N,) values -> (N,) bin indices of `bins` equal-width bins over their range."""
    edges = np.histogram_bin_edges(values, bins=bins)
    return np.digitize(values, edges[1:-1])


def _factor_labels(values: np.ndarray, bins: int) -> np.ndarray:
    """A factor as discrete labels: its own values when few (a grid like dSprites'), else bins."""
    unique, labels = np.unique(values, return_inverse=True)
    return labels if len(unique) <= MIG_MAX_FACTOR_VALUES else _discretise(values, bins)


def factor_information(codes: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """codes (N, D) and factors (N, K) -> (K, D) float64: I(z_j; v_k) / H(v_k), the share of
    factor k's entropy that dimension j's binned code carries, in [0, 1] (NaN for a constant
    factor). Row k says which dimensions move factor k; MIG is the gap between a row's top two."""
    from sklearn.metrics import mutual_info_score

    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors, dtype=np.float64)
    binned = [_discretise(codes[:, j], bins) for j in range(codes.shape[1])]
    out = np.full((factors.shape[1], codes.shape[1]), np.nan)
    for k in range(factors.shape[1]):
        labels = _factor_labels(factors[:, k], bins)
        entropy = mutual_info_score(labels, labels)
        if entropy > 0:
            out[k] = [mutual_info_score(labels, b) / entropy for b in binned]
    return out


def mig_score(codes: np.ndarray, factors: np.ndarray, factor_names: tuple[str, ...] | list[str], bins: int = MIG_BINS) -> dict[str, Any]:
    """codes (N, D) and factors (N, K) -> {"mig": mean gap, "per_factor": {name: gap}, "best_dim":
    {name: dimension with the most information}, "bins", "n_images"}.

    Per factor k: I(z_j; v_k) for every dimension j on the binned codes, sorted; the gap is
    (I_top - I_second) / H(v_k) (with one dimension, I_top / H(v_k)). A constant factor (H = 0)
    has no gap and is left out of the mean. Mutual information in nats (scikit-learn's);
    factor_information gives the whole normalised matrix."""
    return _mig_of(factor_information(codes, factors, bins), factor_names, bins, len(codes))


def _mig_of(shares: np.ndarray, factor_names: tuple[str, ...] | list[str], bins: int, n_images: int) -> dict[str, Any]:
    """mig_score's dict from factor_information's (K, D) shares."""
    per_factor: dict[str, float | None] = {}
    best_dim: dict[str, int | None] = {}
    for k, name in enumerate(factor_names):
        if np.isnan(shares[k]).any():
            per_factor[name], best_dim[name] = None, None
            continue
        top = np.sort(shares[k])[::-1]
        second = top[1] if len(top) > 1 else 0.0
        per_factor[name] = float(top[0] - second)
        best_dim[name] = int(np.argmax(shares[k]))
    gaps = [v for v in per_factor.values() if v is not None]
    return {
        "mig": float(np.mean(gaps)) if gaps else None,
        "per_factor": per_factor,
        "best_dim": best_dim,
        "bins": bins,
        "n_images": int(n_images),
    }


def mig_report(model: LatentModel, x: torch.Tensor, factors: torch.Tensor, factor_names: tuple[str, ...]) -> dict[str, Any]:
    """MIG of the model's means (the AE's codes) on x against the true factors (N, K)."""
    return mig_score(encode_means(model, x), factors.numpy(), factor_names)


def factor_report(model: LatentModel, x: torch.Tensor, factors: torch.Tensor, factor_names: tuple[str, ...]) -> dict[str, Any]:
    """Which factor each latent dimension moves: {"shares": (K, D) factor_information of the model's
    means on x, "factor_names", "mig": mig_score's dict}, from one encoding of x."""
    codes = encode_means(model, x)
    shares = factor_information(codes, factors.numpy())
    return {"shares": shares, "factor_names": tuple(factor_names), "mig": _mig_of(shares, factor_names, MIG_BINS, len(codes))}


def dimension_labels(shares: np.ndarray, factor_names: tuple[str, ...] | list[str], least: float = 0.1) -> list[str]:
    """shares (K, D) from factor_information -> one label per dimension naming the (at most two)
    factors whose entropy it carries a share of at least `least` of, largest first: "z3: x 0.61",
    "z4: y 0.18, x 0.11" (it moves both), or "z5: no factor above 0.10" (unused or spread thin).
    The estimator's bias alone gives every pair a share of about 0.02-0.04 on 2,400 images."""
    shares = np.nan_to_num(np.asarray(shares, np.float64), nan=0.0)
    labels = []
    for j in range(shares.shape[1]):
        ranked = [k for k in np.argsort(-shares[:, j], kind="stable")[:2] if shares[k, j] >= least]
        moved = ", ".join(f"{factor_names[k]} {shares[k, j]:.2f}" for k in ranked)
        labels.append(f"z{j + 1}: {moved}" if ranked else f"z{j + 1}: no factor above {least:.2f}")
    return labels


MIG_CLEAR = 0.2  # a MIG below this is called weak: most factors are spread over several dimensions
MIG_CLOSE = 0.02  # two MIGs closer than this are called about the same


def mig_comparison(migs: dict[str, float | None]) -> str:
    """One honest sentence on two or more models' measured MIGs ({label: MIG}), for a page caption:
    which is higher and by how much, and whether either is high enough (MIG_CLEAR) to call its
    dimensions lined up with single factors. Never claims disentanglement the numbers do not show."""
    known = {k: v for k, v in migs.items() if v is not None}
    if len(known) < 2:
        return "MIG needs the data's true factors for both models: not measured here."
    (best, hi), (worst, lo) = max(known.items(), key=lambda kv: kv[1]), min(known.items(), key=lambda kv: kv[1])
    listed = ", ".join(f"{k} {v:.3f}" for k, v in known.items())
    if hi - lo < MIG_CLOSE:
        head = f"Measured MIG: {listed}: about the same."
    else:
        head = f"Measured MIG: {listed}: {best} is higher by {hi - lo:.3f}."
    if hi < MIG_CLEAR:
        return head + (f" Both are below {MIG_CLEAR}: in neither model does each factor live in one dimension of its own; "
                       "the table shows the few where one does.")
    if lo >= MIG_CLEAR:
        return head + " Both models give some factors a dimension of their own (the table says which)."
    return head + f" {best} gives some factors a dimension of their own (the table says which); {worst} (below {MIG_CLEAR}) mostly does not."


def judge_or_none(data: Any) -> Judges | None:
    """The dataset's judge (`vae.analysis.judge.judge_for`), or None: a dataset without labels,
    or a build whose judge module does not provide judge_for yet."""
    from vae.analysis import judge as judge_module

    find = getattr(judge_module, "judge_for", None)
    return None if find is None else find(data)


# ---------------------------------------------------------------- reading two reports side by side


def _get(report: dict[str, Any], *path: str) -> Any:
    """report[path[0]][path[1]]...; None where any step is missing (an older checkpoint's metrics)."""
    value: Any = report
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _share(v: float) -> str:
    return f"{100 * v:.0f} %"


def _two(v: float) -> str:
    return f"{v:.2f}"


# (label, path in the report, "higher"/"lower" is better, format, one-line plain explanation,
#  sentence with {vae} and {ae} in the row's format)
COMPARED: tuple[tuple[str, tuple[str, ...], str, Any, str, str], ...] = (
    ("prior samples the judge recognises", ("prior_samples", "recognised"), "higher", _share,
     "decode z ~ N(0, I) and ask a classifier trained on the real training images: how often it is at least 50 % sure",
     "The judge recognises {vae} of the VAE's prior samples and {ae} of the AE's."),
    ("judge's mean confidence on prior samples", ("prior_samples", "mean_confidence"), "higher", _two,
     "the classifier's average top probability on the same samples (1 = always certain)",
     "Its mean confidence is {vae} on the VAE's samples and {ae} on the AE's."),
    ("classes covered by prior samples", ("prior_samples", "classes_covered"), "higher", str,
     "how many classes at least 2 % of the prior samples look like: a full space shows every class",
     "The VAE's prior samples cover {vae} of {k} classes, the AE's {ae}."),
    ("class entropy of prior samples (1 = even)", ("prior_samples", "class_entropy"), "higher", _two,
     "how evenly the samples spread over the classes: 1 = all equally often, 0 = always the same one",
     "The class entropy of the VAE's samples is {vae}, the AE's {ae}."),
    ("holes: unrecognisable share of the data's region", ("holes", "share"), "lower", _share,
     "a grid over the box where the test codes lie, decoded: the share the classifier cannot read",
     "{vae} of the VAE's data region decodes to something unrecognisable, {ae} of the AE's."),
    ("round trip: ‖μ(decode(z)) − z‖", ("prior_samples", "round_trip"), "lower", _two,
     "decode a prior sample, encode the image again: how far the code lands from where it started",
     "Re-encoding a decoded prior sample lands {vae} from its z for the VAE, {ae} for the AE."),
    ("interpolation: worst / mean step (1 = even)", ("interpolation", "jump_ratio"), "lower", _two,
     "along straight lines between test codes, the biggest image change per step against the average",
     "Between test codes the worst step is {vae}× the mean step for the VAE, {ae}× for the AE."),
    ("lines between prior samples: worst / mean step", ("prior", "jump_ratio"), "lower", _two,
     "the same, on lines between prior samples",
     "Between prior samples the worst step is {vae}× the mean step for the VAE, {ae}× for the AE."),
    ("test reconstruction log p(x|z) (nats)", ("recon",), "higher", lambda v: f"{v:.1f}",
     "how well each model redraws test images from their own codes (higher is better)",
     "Test reconstruction log p(x|z) is {vae} nats for the VAE and {ae} for the AE."),
)

JUDGED = {("prior_samples", "recognised"), ("prior_samples", "mean_confidence"), ("prior_samples", "classes_covered"),
          ("prior_samples", "class_entropy"), ("holes", "share")}


def compare_reports(vae: dict[str, Any], ae: dict[str, Any]) -> dict[str, Any]:
    """Two reports (full_report or a checkpoint's stored metrics, old ones included) -> the rows a
    page shows: per measure the label, both values and their text, which model it favours ("VAE",
    "AE" or None for a tie or a missing value), a sentence computed from the values and a one-line
    explanation; plus the note on a missing judge and the VAE's active units."""
    rows = []
    k = _get(vae, "prior_samples", "n_classes") or _get(ae, "prior_samples", "n_classes")
    for label, path, better, fmt, explanation, template in COMPARED:
        v, a = _get(vae, *path), _get(ae, *path)
        if v is None or a is None:
            continue  # no judge, or metrics stored before this measure existed
        v_text, a_text = fmt(v), fmt(a)
        if v_text == a_text:
            favours = None
        else:
            favours = "VAE" if (v > a) == (better == "higher") else "AE"
        sentence = template.format(vae=v_text, ae=a_text, k=k)
        sentence += {"VAE": " Better for the VAE.", "AE": " This one favours the AE.", None: " A tie."}[favours]
        rows.append({"label": label, "vae": v, "ae": a, "vae_text": v_text, "ae_text": a_text, "better": better,
                     "favours": favours, "sentence": sentence, "explanation": explanation, "judged": path in JUDGED})
    judged = any(r["judged"] for r in rows)
    note = None
    if not judged:
        note = NO_JUDGE if "prior_samples" in vae else "these metrics were saved before the judge's measures existed"
    active, dim = vae.get("active_dims"), len(vae.get("kl_per_dim") or [])
    units = None
    if active is not None and dim:
        units = (f"The VAE uses {active} of its {dim} latent dimensions (mean KL above {ACTIVE_KL_NATS} nats); "
                 "the AE has no KL term, so active units do not apply to it.")
    return {"rows": rows, "note": note, "active_units": units}


# ---------------------------------------------------------------- filling in missing pixels

FILL_IMAGES = 300  # test images per mask (all of them when the test split is smaller)
FILL_MIN_IMAGES = 200  # the fewest a fill-in measure may rest on
FILL_SAMPLES = 4  # stochastic fills per image (the VAE's z drawn from q(z|x~))
FILL_ITERATIONS = 30


def fill_indices(n_test: int, n_images: int, seed: int = 0) -> np.ndarray:
    """min(n_images, n_test) distinct test indices, seeded, in increasing order."""
    n = min(int(n_images), int(n_test))
    return np.sort(np.random.default_rng(seed).choice(n_test, size=n, replace=False))


def _hidden_mae(filled: torch.Tensor, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """Per image (N,): the mean absolute error over the hidden pixels (every channel)."""
    err = (filled - x).abs() * hidden
    return err.flatten(1).sum(1) / hidden.expand_as(x).flatten(1).sum(1).clamp_min(1)


def _true_label(judge: Judges, images: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image: (the judge's top class is the true label and it is at least RECOGNISED sure,
    it is at least that sure of some class), two (N,) bool arrays."""
    verdict = judge.judge(images)
    sure = verdict.confidence >= RECOGNISED
    return sure & (verdict.classes == labels.numpy()), sure


@torch.no_grad()
def fill_in_report(
    model: LatentModel,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    judge: Judges | None,
    mask: str,
    n_images: int = FILL_IMAGES,
    n_samples: int = FILL_SAMPLES,
    iterations: int = FILL_ITERATIONS,
    seed: int = 0,
) -> dict[str, Any]:
    """Fill in the `mask` (vae.analysis.images.MASKS) of min(n_images, N) seeded test images.

    report["mean"]: the fill with z = mu (`images.fill_batch`), the AE's only fill; for a VAE
    also report["sampled"]: n_samples fills per image with z drawn from q(z|x~) at every iteration
    (seed `seed`), and report["spread"]: the mean over images and hidden pixels of the standard
    deviation across those fills (0 for identical fills). Each fill: "mae", the mean absolute
    error on the hidden pixels (in [0, 1], per image then averaged); "true_label", the share the
    judge reads as the image's true label (at least RECOGNISED sure); "recognised", the share it
    is at least that sure of any class; "any_true_label", the share of images with at least one
    fill read as the true label (the judge's three are None without a judge); "per_image", the
    mae and true-label share of each image (for paired comparisons). report["grey"]: the same for
    the masked image itself (hidden pixels grey), the baseline no model can do worse than by chance.
    Deterministic for a seed: the images, the mask and every eps come from it."""
    from vae.analysis.images import FILL_START, fill_batch, make_mask

    idx = torch.from_numpy(fill_indices(x_test.shape[0], n_images, seed))
    x, labels = x_test[idx].float().cpu(), y_test[idx].cpu()
    known = make_mask(mask, (int(x.shape[2]), int(x.shape[3])))
    hidden = torch.from_numpy(~known).view(1, 1, *known.shape).float()

    def measured(filled: torch.Tensor, truth: torch.Tensor, truth_labels: torch.Tensor, per: int = 1) -> dict[str, Any]:
        """The numbers of one kind of fill; `per` fills per image (consecutive rows) are averaged
        per image in the per-image lists (and "any_true_label": at least one of them is read right)."""
        mae = _hidden_mae(filled, truth, hidden).view(-1, per).mean(1)
        out: dict[str, Any] = {"mae": float(mae.mean()), "true_label": None, "recognised": None, "any_true_label": None,
                               "per_image": {"mae": mae.tolist(), "true_label": None}}
        if judge is not None:
            right, sure = _true_label(judge, filled, truth_labels)
            per_image = right.reshape(-1, per)
            out.update(true_label=float(right.mean()), recognised=float(sure.mean()),
                       any_true_label=float(per_image.any(1).mean()))
            out["per_image"]["true_label"] = per_image.mean(1).tolist()
        return out

    grey = torch.where(hidden.bool().expand_as(x), torch.full_like(x, FILL_START), x)
    report: dict[str, Any] = {
        "kind": "vae" if model.stochastic else "ae",
        "mask": mask,
        "n_images": int(idx.numel()),
        "hidden_pixels": int((~known).sum()),
        "iterations": iterations,
        "seed": seed,
        "judge": judge is not None,
        "grey": measured(grey, x, labels),
        "mean": measured(fill_batch(model, x, known, iterations), x, labels),
        "n_samples": None,
        "sampled": None,
        "spread": None,
    }
    if model.stochastic and n_samples > 0:
        rep = x.repeat_interleave(n_samples, 0)  # image i's fills are rows i*k ... i*k + k - 1
        gen = torch.Generator().manual_seed(seed)
        fills = fill_batch(model, rep, known, iterations, sample=True, generator=gen)
        spread = fills.view(-1, n_samples, *x.shape[1:]).std(1, unbiased=False)  # (N, C, H, W)
        report.update(
            n_samples=n_samples,
            sampled=measured(fills, rep, labels.repeat_interleave(n_samples), per=n_samples),
            spread=float(((spread * hidden).flatten(1).sum(1) / hidden.expand_as(x).flatten(1).sum(1)).mean()),
        )
    return report


NOISE_SE = 2.0  # a paired difference within this many standard errors of 0 is "within noise"


def paired_difference(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean of a - b over paired per-image values and its standard error (0 for fewer than 2 pairs)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size < 2:
        return float(d.mean()) if d.size else 0.0, 0.0
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def _three(v: float) -> str:
    return f"{v:.3f}"


# (key, label, (VAE fill, AE fill, measure), "higher"/"lower" is better, format, explanation, sentence)
FILL_COMPARED: tuple[tuple[str, str, tuple[str, str, str], str, Any, str, str], ...] = (
    ("mae_mean", "hidden pixels: mean absolute error, fill with z = μ", ("mean", "mean", "mae"), "lower", _three,
     "how far the filled-in pixels are from the real ones, 0 = exact, 1 = every pixel inverted",
     "With z = μ, the fills' error on the hidden pixels is {vae} for the VAE and {ae} for the AE."),
    ("true_mean", "judge reads the true class, fill with z = μ", ("mean", "mean", "true_label"), "higher", _share,
     "how often the classifier, shown the completed image, names the class the test image really has",
     "The judge reads the true class in {vae} of the VAE's fills (z = μ) and {ae} of the AE's."),
    ("mae_sampled", "hidden pixels: mean absolute error, sampled fills", ("sampled", "mean", "mae"), "lower", _three,
     "the same error for the VAE's fills with z drawn from q(z|x̃), against the AE's one fill",
     "The VAE's sampled fills are {vae} from the hidden pixels on average, the AE's fill {ae}."),
    ("true_sampled", "judge reads the true class, sampled fills", ("sampled", "mean", "true_label"), "higher", _share,
     "how often a single sampled fill of the VAE is read as the true class, against the AE's one fill",
     "The judge reads the true class in {vae} of the VAE's sampled fills and {ae} of the AE's fills."),
    ("any_sampled", "true class in at least one of the fills", ("sampled", "mean", "any_true_label"), "higher", _share,
     "{k} sampled fills per image for the VAE against the AE's single fill: what several guesses add",
     "In {vae} of the images at least one of the VAE's {k} sampled fills is read as the true class; the AE's one fill, {ae}."),
)


def compare_fill_reports(vae: dict[str, Any], ae: dict[str, Any]) -> dict[str, Any]:
    """A VAE's and an AE's `fill_in_report` on the same images and mask -> the rows a page shows
    (as `compare_reports`: label, values and text, favours "VAE"/"AE"/None, sentence, explanation)
    and a headline computed from them. A difference whose paired mean over the images lies within
    NOISE_SE standard errors of 0 favours neither ("within noise"); measures that need a judge are
    left out without one; the sampled-fill rows need the VAE's sampled fills."""
    if (vae["mask"], vae["n_images"], vae["seed"]) != (ae["mask"], ae["n_images"], ae["seed"]):
        raise ValueError("the two fill-in reports must cover the same images and mask")
    k = vae.get("n_samples")
    rows = []
    for key, label, (v_fill, a_fill, measure), better, fmt, explanation, template in FILL_COMPARED:
        vf, af = vae.get(v_fill), ae.get(a_fill)
        if vf is None or af is None or vf.get(measure) is None or af.get(measure) is None:
            continue
        v, a = float(vf[measure]), float(af[measure])
        per_v = (vf.get("per_image") or {}).get("true_label" if measure != "mae" else "mae")
        per_a = (af.get("per_image") or {}).get("true_label" if measure != "mae" else "mae")
        noise = None
        if measure != "any_true_label" and per_v is not None and per_a is not None:
            noise = paired_difference(per_v, per_a)[1]
        v_text, a_text = fmt(v), fmt(a)
        within_noise = noise is not None and abs(v - a) <= NOISE_SE * noise
        if v_text == a_text or within_noise:
            favours = None
        else:
            favours = "VAE" if (v > a) == (better == "higher") else "AE"
        sentence = template.format(vae=v_text, ae=a_text, k=k)
        if favours is None:
            sentence += " A tie." if v_text == a_text else f" A tie within noise (difference {fmt(abs(v - a))}, standard error {fmt(noise)})."
        else:
            sentence += " Better for the VAE." if favours == "VAE" else " This one favours the AE."
        rows.append({"key": key, "label": label, "vae": v, "ae": a, "vae_text": v_text, "ae_text": a_text,
                     "better": better, "favours": favours, "noise": noise, "sentence": sentence,
                     "explanation": explanation.format(k=k)})
    by = {r["key"]: r for r in rows}
    head = f"Over {vae['n_images']} test images with the {vae['mask']} hidden, "
    mae = by["mae_mean"]
    if mae["favours"] is None:
        head += f"the two models' fills are about as close to the truth (MAE {mae['vae_text']} for the VAE, {mae['ae_text']} for the AE)"
    else:
        win, lose = ("vae", "ae") if mae["favours"] == "VAE" else ("ae", "vae")
        head += (f"the {win.upper()}'s fills are closer to the truth (MAE {mae[win + '_text']} vs {mae[lose + '_text']})")
    true = by.get("true_mean")
    if true is not None:
        head += (f"; the judge recognises the true class in {true['vae_text']} of the VAE's fills and {true['ae_text']} of the AE's"
                 + (" (within noise)" if true["favours"] is None and true["vae_text"] != true["ae_text"] else ""))
    head += "."
    grey = vae["grey"]
    baseline = f"Left grey, the hidden pixels are {_three(grey['mae'])} from the truth"
    if grey.get("true_label") is not None:
        baseline += f" and the judge reads the true class in {_share(grey['true_label'])} of the masked images"
    note = None if vae.get("judge") else NO_JUDGE
    return {"rows": rows, "headline": head, "baseline": baseline + ".", "note": note, "n_images": vae["n_images"],
            "mask": vae["mask"], "n_samples": k, "spread": vae.get("spread")}
