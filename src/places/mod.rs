//! Places: coordinates, the gazetteer and resolving location words to a point.
//!
//! Owns: [`LatLon`] (the only constructor of `geo` points), text normalization for
//! street and place names, the gazetteer index and location resolution.
//! Must not touch: files, clocks, Matrix, storage. Gazetteer files are read by `config`.

mod gazetteer;
pub mod normalize;
mod point;
mod resolve;

pub use gazetteer::{Gazetteer, GazetteerBuilder, GazetteerError, Place, PlaceKind, Street};
pub use point::{LatLon, LocalMetric, M_PER_DEG_LAT, degree_box, parse_geo_uri};
pub use resolve::{ResolveMethod, Resolved};
