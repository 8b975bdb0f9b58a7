//! Optimisation shared by the trainers: fused AdamW with parameter groups, learning-rate schedules.
pub mod adamw;
pub mod param_group;
pub mod schedule;

pub use adamw::AdamW;
pub use param_group::{is_gain_or_bias, ParamGroup};
pub use schedule::LrSchedule;
