//! Constant-velocity Kalman filter on a box's centre and size with the real time step between frames (the SORT / DeepSORT motion model, Bewley et al. 2016 / Wojke et al. 2017, noise scaled by box height as DeepSORT's `kalman_filter.py`).
//!
//! DeepSORT's filter has the 8-d state `(x, y, a, h, ẋ, ẏ, ȧ, ḣ)` with a block transition `[[I, dt·I], [0, I]]`,
//! observation `[I, 0]` and diagonal noises; with a diagonal initial covariance the four (position, velocity)
//! pairs never couple, so it is exactly four independent 2-state filters, which is what this is (on
//! `(cx, cy, w, h)`). Two differences, both because analysis frames are sparse and irregular (8 per window,
//! gaps between caption windows): the step is the real time between frames in seconds (noises per second,
//! the process noise of a continuous white-noise acceleration), and the noise scales are per coordinate group
//! (centre vs size) so a size jump is not mistaken for motion.

/// Noise scales, in box heights (and seconds).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MotionNoise {
    /// Measurement noise of the centre and of the size (std, heights).
    pub measure_pos: f64,
    pub measure_size: f64,
    /// Initial velocity uncertainty (std, heights per second) of the centre and of the size.
    pub init_vel_pos: f64,
    pub init_vel_size: f64,
    /// White-noise acceleration (std, heights per second²) of the centre and of the size.
    pub accel_pos: f64,
    pub accel_size: f64,
}

impl Default for MotionNoise {
    /// Centre: DeepSORT's measurement noise (1/20 of the height); a walking person covers ~0.8 heights per
    /// second (1.4 m/s at 1.7 m), hence an initial velocity std of 0.5 heights/s and an acceleration std of
    /// 0.5 heights/s². Size: detectors' box sizes fluctuate more than their centres (limbs, partial
    /// occlusion), so 1/10 of the height, and sizes change an order of magnitude slower than positions.
    fn default() -> Self {
        Self {
            measure_pos: 0.05,
            measure_size: 0.1,
            init_vel_pos: 0.5,
            init_vel_size: 0.05,
            accel_pos: 0.5,
            accel_size: 0.05,
        }
    }
}

/// One coordinate: position, velocity and their 2×2 covariance.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    x: f64,
    v: f64,
    /// Covariance `[[pxx, pxv], [pxv, pvv]]`.
    pxx: f64,
    pxv: f64,
    pvv: f64,
}

impl Axis {
    fn new(x: f64, std_x: f64, std_v: f64) -> Self {
        Self { x, v: 0.0, pxx: std_x * std_x, pxv: 0.0, pvv: std_v * std_v }
    }

    /// `x += v·dt`, `P = F P Fᵀ + q·[[dt³/3, dt²/2], [dt²/2, dt]]` (continuous white-noise acceleration of
    /// variance `q` per second).
    fn predict(&mut self, dt: f64, q: f64) {
        self.x += self.v * dt;
        let pxx = self.pxx + 2.0 * dt * self.pxv + dt * dt * self.pvv + q * dt.powi(3) / 3.0;
        let pxv = self.pxv + dt * self.pvv + q * dt * dt / 2.0;
        let pvv = self.pvv + q * dt;
        (self.pxx, self.pxv, self.pvv) = (pxx, pxv, pvv);
    }

    /// Innovation variance of a measurement with variance `r`.
    fn innovation(&self, r: f64) -> f64 {
        self.pxx + r
    }

    /// Standard Kalman update with a position measurement `z` of variance `r`.
    fn update(&mut self, z: f64, r: f64) {
        let s = self.pxx + r;
        let (kx, kv) = (self.pxx / s, self.pxv / s);
        let y = z - self.x;
        self.x += kx * y;
        self.v += kv * y;
        let (pxx, pxv, pvv) = (self.pxx, self.pxv, self.pvv);
        self.pxx = (1.0 - kx) * pxx;
        self.pxv = (1.0 - kx) * pxv;
        self.pvv = pvv - kv * pxv;
    }
}

/// Box state `(cx, cy, w, h)` with velocities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxFilter {
    axes: [Axis; 4],
    noise: MotionNoise,
}

fn to_cxcywh(b: [f32; 4]) -> [f64; 4] {
    let (x1, y1, x2, y2) = (b[0] as f64, b[1] as f64, b[2] as f64, b[3] as f64);
    [(x1 + x2) / 2.0, (y1 + y2) / 2.0, (x2 - x1).max(1e-3), (y2 - y1).max(1e-3)]
}

impl BoxFilter {
    /// Starts at the measured box `[x1, y1, x2, y2]` with zero velocity (DeepSORT `initiate`: position std
    /// twice the measurement noise).
    pub fn new(b: [f32; 4], noise: MotionNoise) -> Self {
        let m = to_cxcywh(b);
        let h = m[3];
        let ax = |i: usize| {
            let (mp, vv) =
                if i < 2 { (noise.measure_pos, noise.init_vel_pos) } else { (noise.measure_size, noise.init_vel_size) };
            Axis::new(m[i], 2.0 * mp * h, vv * h)
        };
        Self { axes: [ax(0), ax(1), ax(2), ax(3)], noise }
    }

    fn height(&self) -> f64 {
        self.axes[3].x.max(1e-3)
    }

    fn measure_var(&self, i: usize) -> f64 {
        let s = if i < 2 { self.noise.measure_pos } else { self.noise.measure_size } * self.height();
        s * s
    }

    /// Advances the state by `dt` seconds (no-op for `dt ≤ 0`).
    pub fn predict(&mut self, dt: f64) {
        if dt <= 0.0 || !dt.is_finite() {
            return;
        }
        let h = self.height();
        for (i, a) in self.axes.iter_mut().enumerate() {
            let s = if i < 2 { self.noise.accel_pos } else { self.noise.accel_size } * h;
            a.predict(dt, s * s);
        }
        // a box never shrinks below a pixel, whatever the velocity says
        self.axes[2].x = self.axes[2].x.max(1.0);
        self.axes[3].x = self.axes[3].x.max(1.0);
    }

    /// Corrects the state with a measured box.
    pub fn update(&mut self, b: [f32; 4]) {
        let m = to_cxcywh(b);
        for (i, &z) in m.iter().enumerate() {
            let r = self.measure_var(i);
            self.axes[i].update(z, r);
        }
    }

    /// Squared Mahalanobis distance of a measured box from the predicted one (4 degrees of freedom).
    pub fn mahalanobis2(&self, b: [f32; 4]) -> f64 {
        let m = to_cxcywh(b);
        (0..4)
            .map(|i| {
                let d = m[i] - self.axes[i].x;
                d * d / self.axes[i].innovation(self.measure_var(i))
            })
            .sum()
    }

    /// The current box `[x1, y1, x2, y2]`.
    pub fn bbox(&self) -> [f32; 4] {
        let [cx, cy, w, h] = [self.axes[0].x, self.axes[1].x, self.axes[2].x, self.axes[3].x];
        [(cx - w / 2.0) as f32, (cy - h / 2.0) as f32, (cx + w / 2.0) as f32, (cy + h / 2.0) as f32]
    }

    /// Velocity of the centre, pixels per second.
    pub fn velocity(&self) -> (f64, f64) {
        (self.axes[0].v, self.axes[1].v)
    }
}

/// 95 % quantile of χ² with 4 degrees of freedom: DeepSORT's `chi2inv95[4]` gating threshold.
pub const CHI2_95_4DOF: f64 = 9.4877;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_constant_velocity_with_irregular_steps() {
        // a box moving +80 px/s in x, observed at irregular times
        let times = [0.0, 0.5, 1.0, 1.3, 2.0, 2.25, 3.0, 3.5, 5.0];
        let at = |t: f64| [100.0 + 80.0 * t as f32, 50.0, 140.0 + 80.0 * t as f32, 150.0];
        let mut f = BoxFilter::new(at(0.0), MotionNoise::default());
        let mut last = 0.0;
        for &t in &times[1..] {
            f.predict(t - last);
            f.update(at(t));
            last = t;
        }
        let (vx, vy) = f.velocity();
        assert!((vx - 80.0).abs() < 2.0 && vy.abs() < 1.0, "{vx} {vy}");
        // prediction 1 s ahead lands on the true box
        f.predict(1.0);
        let p = f.bbox();
        let truth = at(6.0);
        for i in 0..4 {
            assert!((p[i] - truth[i]).abs() < 3.0, "{p:?} vs {truth:?}");
        }
        assert!(f.mahalanobis2(truth) < 1.0);
    }

    #[test]
    fn uncertainty_grows_with_the_gap() {
        let mut a = BoxFilter::new([0.0, 0.0, 50.0, 100.0], MotionNoise::default());
        let mut b = a;
        a.predict(0.5);
        b.predict(5.0);
        let far = [60.0, 0.0, 110.0, 100.0]; // 60 px = 0.6 heights away
        assert!(a.mahalanobis2(far) > b.mahalanobis2(far));
        assert!(a.mahalanobis2(far) < CHI2_95_4DOF, "a walker's half-second step is within the gate");
        assert!(a.mahalanobis2([300.0, 0.0, 350.0, 100.0]) > CHI2_95_4DOF, "three heights away is not");
    }
}
