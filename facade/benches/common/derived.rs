//! The paired benchmarks' measurement, shared by the facade's benchmarks and the journal's
//! (`journal/benches/journal.rs` includes this file by path).

/// A criterion measurement whose values the benchmark computes itself from a paired run: two
/// paths (the facade and the direct client; the journal and its floor) send the same number
/// of refunds within one sample, so load from elsewhere on the machine hits both alike and
/// cancels out of the comparison.
///
/// A sample of `iters` iterations returns `iters` times the per-refund figure, so criterion's
/// time-per-iteration statistics are statistics of that figure.
pub struct Derived {
    unit: Unit,
}

#[derive(Clone, Copy)]
enum Unit {
    /// One path's time over the other's for the same refunds (throughput ratio = 1 / this),
    /// shown as `x <the other> time`.
    Ratio(&'static str),
    /// Facade time minus direct time per refund, in nanoseconds (may be negative).
    Nanoseconds,
}

impl Derived {
    /// Values are one path's time over the other's; `per` names the other in the output
    /// (`x direct time`).
    pub fn time_ratio(per: &'static str) -> Derived {
        Derived {
            unit: Unit::Ratio(per),
        }
    }

    /// Values are facade time - direct time, in nanoseconds.
    pub fn time_difference() -> Derived {
        Derived {
            unit: Unit::Nanoseconds,
        }
    }
}

impl criterion::measurement::Measurement for Derived {
    type Intermediate = ();
    type Value = f64;

    fn start(&self) {}

    fn end(&self, (): ()) -> f64 {
        // Only `iter_custom` is used: the benchmark returns the value.
        0.0
    }

    fn add(&self, v1: &f64, v2: &f64) -> f64 {
        v1 + v2
    }

    fn zero(&self) -> f64 {
        0.0
    }

    fn to_f64(&self, value: &f64) -> f64 {
        *value
    }

    fn formatter(&self) -> &dyn criterion::measurement::ValueFormatter {
        self
    }
}

impl criterion::measurement::ValueFormatter for Derived {
    fn scale_values(&self, typical_value: f64, values: &mut [f64]) -> &'static str {
        match self.unit {
            Unit::Ratio(per) => per,
            Unit::Nanoseconds => {
                let (divisor, unit) = match typical_value.abs() {
                    t if t < 1e3 => (1.0, "ns"),
                    t if t < 1e6 => (1e3, "µs"),
                    _ => (1e6, "ms"),
                };
                for value in values {
                    *value /= divisor;
                }
                unit
            }
        }
    }

    fn scale_throughputs(
        &self,
        _typical_value: f64,
        _throughput: &criterion::Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        ""
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        match self.unit {
            Unit::Ratio(_) => "ratio",
            Unit::Nanoseconds => "ns",
        }
    }
}
