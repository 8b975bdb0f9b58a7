//! EmotionCLIP pre-training (paper §3.4, appendix B.2): SNCE loss, optimiser, schedule. (In progress.)
