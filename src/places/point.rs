//! Coordinates: the one place where latitude/longitude order is decided.
//!
//! `geo` takes points as (longitude, latitude); everything in neighborwatch builds them
//! through [`LatLon::to_point`] so the order cannot be swapped by accident.

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

/// A WGS84 position in decimal degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    /// Latitude, −90..=90.
    pub lat: f64,
    /// Longitude, −180..=180.
    pub lon: f64,
}

impl LatLon {
    /// A position, or `None` when either coordinate is out of range or not finite.
    pub fn new(lat: f64, lon: f64) -> Option<Self> {
        let ok = lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0;
        ok.then_some(Self { lat, lon })
    }

    /// The `geo` point (x = longitude, y = latitude).
    pub fn to_point(self) -> Point<f64> {
        Point::new(self.lon, self.lat)
    }

    /// The position of a `geo` point (x = longitude, y = latitude).
    pub fn from_point(p: Point<f64>) -> Self {
        Self {
            lat: p.y(),
            lon: p.x(),
        }
    }

    /// Great-circle distance in metres.
    pub fn distance_m(self, other: LatLon) -> f64 {
        Haversine.distance(self.to_point(), other.to_point())
    }

    /// Distance in metres by the equirectangular approximation: within 0.1 % of the
    /// great-circle distance below 10 km, several times cheaper. For hot-path filtering.
    pub fn fast_distance_m(self, other: LatLon) -> f64 {
        const R: f64 = 6_371_008.8;
        let mean_lat = ((self.lat + other.lat) / 2.0).to_radians();
        let x = (other.lon - self.lon).to_radians() * mean_lat.cos();
        let y = (other.lat - self.lat).to_radians();
        R * x.hypot(y)
    }

    /// Distances from this point to many nearby ones, with the trigonometry done once.
    pub fn metric(self) -> LocalMetric {
        const M_PER_RAD: f64 = 6_371_008.8;
        let m_per_deg = M_PER_RAD * std::f64::consts::PI / 180.0;
        LocalMetric {
            origin: self,
            m_per_deg_lat: m_per_deg,
            m_per_deg_lon: m_per_deg * self.lat.to_radians().cos(),
        }
    }

    /// `geo:LAT,LON;u=UNCERTAINTY` (RFC 5870), six decimals (about 10 cm).
    pub fn geo_uri(self, uncertainty_m: Option<f64>) -> String {
        match uncertainty_m {
            Some(u) => format!("geo:{:.6},{:.6};u={}", self.lat, self.lon, u.round()),
            None => format!("geo:{:.6},{:.6}", self.lat, self.lon),
        }
    }

    /// The centroid of several positions (plain mean; fine at neighborhood scale).
    pub fn centroid(points: impl IntoIterator<Item = LatLon>) -> Option<LatLon> {
        let (mut lat, mut lon, mut n) = (0.0, 0.0, 0usize);
        for p in points {
            lat += p.lat;
            lon += p.lon;
            n += 1;
        }
        (n > 0).then(|| LatLon {
            lat: lat / n as f64,
            lon: lon / n as f64,
        })
    }
}

/// Parses a `geo:` URI (`geo:37.8,-122.27`, `geo:37.8,-122.27;u=35`, `geo:37.8,-122.27,12`).
/// Returns the position and the uncertainty in metres when one is given.
pub fn parse_geo_uri(s: &str) -> Option<(LatLon, Option<f64>)> {
    let rest = s.trim().strip_prefix("geo:").or_else(|| {
        let t = s.trim();
        (t.len() > 4 && t[..4].eq_ignore_ascii_case("geo:")).then(|| &t[4..])
    })?;
    let mut parts = rest.split(';');
    let coords = parts.next()?;
    let mut nums = coords.split(',');
    let lat: f64 = nums.next()?.trim().parse().ok()?;
    let lon: f64 = nums.next()?.trim().parse().ok()?;
    let mut u = None;
    for p in parts {
        if let Some(v) = p.trim().strip_prefix("u=") {
            u = v.parse::<f64>().ok().filter(|u| u.is_finite() && *u >= 0.0);
        }
    }
    Some((LatLon::new(lat, lon)?, u))
}

/// Metres per degree of latitude (mean).
pub const M_PER_DEG_LAT: f64 = 111_320.0;

/// Degrees of latitude and longitude that cover `radius_m` around `at` (a bounding box
/// half-size that never underestimates, for spatial-index queries).
pub fn degree_box(at: LatLon, radius_m: f64) -> (f64, f64) {
    at.metric().degree_box(radius_m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_metric_agrees_with_great_circle_distance_within_a_tenth_of_a_percent() {
        for (lat, lon) in [
            (37.82, -122.27),
            (41.81, -87.66),
            (-33.9, 151.2),
            (64.1, -21.9),
        ] {
            let a = LatLon::new(lat, lon).unwrap();
            let m = a.metric();
            for (dn, de) in [
                (0.0, 500.0),
                (300.0, -400.0),
                (-2000.0, 0.0),
                (7000.0, 7000.0),
            ] {
                let b = LatLon::new(
                    lat + dn / M_PER_DEG_LAT,
                    lon + de / (M_PER_DEG_LAT * lat.to_radians().cos()),
                )
                .unwrap();
                let exact = a.distance_m(b);
                let fast = m.distance_m(b);
                assert!(
                    (fast - exact).abs() <= exact * 1e-3,
                    "{a:?}→{b:?}: {fast} vs {exact}"
                );
                assert!(m.within(b, exact * 1.002));
                assert!(!m.within(b, exact * 0.998));
            }
        }
    }

    #[test]
    fn geo_uri_round_trip_and_uncertainty() {
        let (p, u) = parse_geo_uri("geo:37.823,-122.279;u=35").unwrap();
        assert_eq!((p.lat, p.lon, u), (37.823, -122.279, Some(35.0)));
        assert!(parse_geo_uri("geo:95,0").is_none());
        assert!(parse_geo_uri("geo:abc").is_none());
        assert_eq!(p.geo_uri(Some(35.0)), "geo:37.823000,-122.279000;u=35");
    }

    #[test]
    fn distance_is_in_metres_and_order_is_lat_lon() {
        // One degree of latitude is about 111 km everywhere.
        let a = LatLon::new(37.0, -122.0).unwrap();
        let b = LatLon::new(38.0, -122.0).unwrap();
        let d = a.distance_m(b);
        assert!((110_000.0..112_500.0).contains(&d), "{d}");
        // The fast approximation agrees within 0.1 % at neighborhood scale.
        let c = LatLon::new(37.8237, -122.2762).unwrap();
        let e = LatLon::new(37.8262, -122.2801).unwrap();
        let (exact, fast) = (c.distance_m(e), c.fast_distance_m(e));
        assert!((exact - fast).abs() / exact < 0.001, "{exact} vs {fast}");
    }
}

/// Distances from one point to points near it (equirectangular projection at the
/// point's latitude: within 0.1 % of the great-circle distance below 10 km). The engine
/// compares each report with every candidate incident and its reports; this makes each
/// comparison a few multiplications.
#[derive(Clone, Copy, Debug)]
pub struct LocalMetric {
    origin: LatLon,
    m_per_deg_lat: f64,
    m_per_deg_lon: f64,
}

impl LocalMetric {
    /// The point distances are measured from.
    pub fn origin(&self) -> LatLon {
        self.origin
    }

    /// Squared distance in square metres.
    pub fn distance2_m2(&self, p: LatLon) -> f64 {
        let y = (p.lat - self.origin.lat) * self.m_per_deg_lat;
        let x = (p.lon - self.origin.lon) * self.m_per_deg_lon;
        x * x + y * y
    }

    /// Distance in metres.
    pub fn distance_m(&self, p: LatLon) -> f64 {
        self.distance2_m2(p).sqrt()
    }

    /// Degrees of latitude and longitude that cover `radius_m` around the origin, like
    /// [`degree_box`] without the trigonometry.
    pub fn degree_box(&self, radius_m: f64) -> (f64, f64) {
        let dlat = radius_m / self.m_per_deg_lat * 1.01;
        let dlon = radius_m / self.m_per_deg_lon.max(self.m_per_deg_lat * 0.01) * 1.01;
        (dlat, dlon)
    }

    /// Whether `p` is within `radius_m` (inclusive).
    pub fn within(&self, p: LatLon, radius_m: f64) -> bool {
        self.distance2_m2(p) <= radius_m * radius_m
    }
}
