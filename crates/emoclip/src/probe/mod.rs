//! Linear-probe evaluation (paper §4.1, appendix B.3): classifiers, metrics, reports. (In progress.)
