//! A neighborhood's area: a circle written in the network file, or the polygons of a
//! GeoJSON file it names (a Polygon, MultiPolygon, Feature or FeatureCollection).

use geo::{MultiPolygon, Polygon};
use serde_json::Value;
use toml::Spanned;

use super::load::Validator;
use super::raw::RawArea;
use super::{Area, ConfigError};
use crate::places::{GazetteerError, LatLon};

impl Validator<'_> {
    /// A neighborhood's `area`.
    pub(super) fn area(&mut self, a: &Spanned<RawArea>) -> Result<Area, ConfigError> {
        let span = a.span();
        match a.get_ref() {
            RawArea::Circle(c) => {
                let [lat, lon] = c.center;
                let center = LatLon::new(lat, lon).ok_or_else(|| {
                    self.invalid(
                        &span,
                        "neighborhood.area.center",
                        format!("[{lat}, {lon}] is not [latitude, longitude] in range"),
                    )
                })?;
                let radius_m = c.radius_m.as_f64();
                if !(radius_m.is_finite() && radius_m > 0.0) {
                    return Err(self.invalid(
                        &span,
                        "neighborhood.area.radius_m",
                        format!("must be above 0, not {radius_m}"),
                    ));
                }
                Ok(Area::Circle { center, radius_m })
            }
            RawArea::GeoJson(g) => {
                let rel = Spanned::new(span.clone(), g.geojson.clone());
                let (path, text) = self.read(&rel, "neighborhood.area.geojson")?;
                let geo_err = |reason: String| ConfigError::Geo {
                    file: self.file.clone(),
                    line: self.line(&span),
                    key: "neighborhood.area.geojson".into(),
                    path: path.clone(),
                    source: GazetteerError::Feature { index: 0, reason },
                };
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| geo_err(format!("not valid JSON: {e}")))?;
                polygons(&v).map(Area::Polygons).map_err(geo_err)
            }
        }
    }
}

/// A GeoJSON ring: positions as [longitude, latitude].
fn ring(v: &Value) -> Result<geo::LineString<f64>, String> {
    let pts = v.as_array().ok_or("a ring must be a list of positions")?;
    pts.iter()
        .map(|p| {
            let a = p
                .as_array()
                .filter(|a| a.len() >= 2)
                .ok_or("a position must be [longitude, latitude]")?;
            let (lon, lat) = (a[0].as_f64(), a[1].as_f64());
            lat.zip(lon)
                .and_then(|(lat, lon)| LatLon::new(lat, lon))
                .map(|p| geo::Coord { x: p.lon, y: p.lat })
                .ok_or_else(|| "position out of range".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(geo::LineString::new)
}

/// A GeoJSON polygon: its exterior ring, then its holes.
fn polygon(v: &Value) -> Result<Polygon<f64>, String> {
    let rings = v.as_array().ok_or("a polygon must be a list of rings")?;
    let mut it = rings.iter();
    let exterior = ring(it.next().ok_or("a polygon needs a ring")?)?;
    let interiors = it.map(ring).collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, interiors))
}

/// Polygons of a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection.
fn polygons(v: &Value) -> Result<MultiPolygon<f64>, String> {
    let t = v.get("type").and_then(Value::as_str).unwrap_or_default();
    let coords = || {
        v.get("coordinates")
            .ok_or_else(|| "missing `coordinates`".to_owned())
    };
    match t {
        "Polygon" => Ok(MultiPolygon::new(vec![polygon(coords()?)?])),
        "MultiPolygon" => coords()?
            .as_array()
            .ok_or("MultiPolygon coordinates must be a list")?
            .iter()
            .map(polygon)
            .collect::<Result<Vec<_>, _>>()
            .map(MultiPolygon::new),
        "Feature" => polygons(v.get("geometry").ok_or("missing `geometry`")?),
        "FeatureCollection" => {
            let mut all = Vec::new();
            for f in v
                .get("features")
                .and_then(Value::as_array)
                .ok_or("missing `features`")?
            {
                all.extend(polygons(f)?.0);
            }
            if all.is_empty() {
                return Err("no polygon in the collection".into());
            }
            Ok(MultiPolygon::new(all))
        }
        other => Err(format!(
            "expected a Polygon or MultiPolygon, found `{other}`"
        )),
    }
}
