//! log Z_EP from the factorisation and the last sweep's record (module docs of [`super`]).

use super::site::{Sites, SweepRecord};

/// log Z_EP from log|B|, ν̃ᵀΣν̃ and the last sweep's record (module docs).
pub(super) fn log_z_ep(logdet_b: f64, nu_sigma_nu: f64, sites: &Sites, rec: &SweepRecord) -> f64 {
    let mut total = 0.5 * (nu_sigma_nu - logdet_b);
    for i in 0..sites.tau.len() {
        let (tt, nt) = (sites.tau[i], sites.nu[i]);
        let (tc, nc) = (rec.cav.tau[i], rec.cav.nu[i]);
        let s = tc + tt;
        total += rec.log_zhat[i] + 0.5 * (tt / tc).ln_1p() - 0.5 * nt * nt / s
            + 0.5 * nc * ((tt / tc) * nc - 2.0 * nt) / s;
    }
    total
}
