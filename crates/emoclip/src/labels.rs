//! Label sets shared by features (the probes, zero-shot prompt sets): one copy each.

/// The 26 Emotic categories (Kosti et al., paper Table 5 names; BoLD uses the same set), in the Emotic
/// annotation order (Tandon-A/emotic `mat2py.py` `cat_arr` columns; the official `linear_eval.py` index order).
pub const EMOTIC_CATEGORIES: [&str; 26] = [
    "Affection",
    "Anger",
    "Annoyance",
    "Anticipation",
    "Aversion",
    "Confidence",
    "Disapproval",
    "Disconnection",
    "Disquietment",
    "Doubt/Confusion",
    "Embarrassment",
    "Engagement",
    "Esteem",
    "Excitement",
    "Fatigue",
    "Fear",
    "Happiness",
    "Pain",
    "Peace",
    "Pleasure",
    "Sadness",
    "Sensitivity",
    "Suffering",
    "Surprise",
    "Sympathy",
    "Yearning",
];
