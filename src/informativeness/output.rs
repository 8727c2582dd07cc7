//! The attribution file (`infoutil attribute --out`, kind `attribution`): each image's
//! informativeness map (Shapley or Grad-CAM), its crops and the record it came from, gathered
//! chunk by chunk as images are explained.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array3};

use super::attribute::{Attributed, MapOptions, Shapley};
use super::{Attribution, CropRule};
use crate::error::{Error, Result};
use crate::provenance::Provenance;
use crate::store::{self, schema::attribution, schema::kind};

/// Everything an attribution run found, in the order the images were explained.
pub struct Attributions {
    options: Options,
    maps: Vec<f32>,
    source_index: Vec<i64>,
    label: Vec<i64>,
    boxes: Vec<i32>,
}

/// What the maps were made with: the file's `config` section beside the run's context.
#[derive(serde::Serialize)]
struct Options {
    attribution: Attribution,
    shapley: Shapley,
    crops: CropRule,
    seed: u64,
    mean_pixel: Vec<f32>,
}

impl Attributions {
    /// For maps made as `maps` says, crops chosen by `crops`, and `seed`.
    pub fn new(maps: &MapOptions, crops: &CropRule, seed: u64) -> Self {
        Attributions {
            options: Options {
                attribution: maps.attribution,
                shapley: maps.shapley.clone(),
                crops: *crops,
                seed,
                mean_pixel: maps.mean_pixel.to_vec(),
            },
            maps: Vec::new(),
            source_index: Vec::new(),
            label: Vec::new(),
            boxes: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.source_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.source_index.is_empty()
    }

    /// Keep one chunk of explained images.
    pub fn push(&mut self, chunk: &Attributed) {
        for ((r, map), crops) in chunk
            .records
            .iter()
            .zip(chunk.maps.outer_iter())
            .zip(chunk.crops)
        {
            self.maps.extend(map.iter().map(|&v| v as f32));
            self.source_index.push(r.index as i64);
            self.label.push(r.label as i64);
            let corners = crops.iter().flat_map(|b| [b.y0, b.x0, b.y1, b.x1]);
            self.boxes.extend(corners.map(|v| v as i32));
        }
    }

    /// Write the documented schema (docs/hdf5-schema.md, kind `attribution`); the group's
    /// attributes spell each option as the configuration does.
    pub fn write(&self, path: &Path, teacher_sha256: &str, run: &Provenance) -> Result<PathBuf> {
        let header = store::Header {
            kind: kind::ATTRIBUTION,
            config: &run.with(&self.options),
            teacher_sha256,
        };
        let (shapley, seed) = (&self.options.shapley, self.options.seed);
        let w = store::Writer::create(path, &header)?;
        let spelled = |v: serde_json::Value| v.as_str().map_or(v.to_string(), str::to_string);
        let values = [
            self.options.attribution.name().to_string(),
            shapley.grid.to_string(),
            shapley.budget.to_string(),
            spelled(serde_json::json!(shapley.estimator)),
            spelled(serde_json::json!(shapley.baseline)),
            spelled(serde_json::json!(shapley.value)),
            seed.to_string(),
        ];
        for (k, v) in attribution::ATTRIBUTES.iter().zip(values) {
            w.attr(attribution::GROUP, k, &v)?;
        }
        let (n, g) = (self.len(), shapley.grid);
        let shape_err = |e: ndarray::ShapeError| Error::store(path, e);
        let maps = Array3::from_shape_vec((n, g, g), self.maps.clone()).map_err(shape_err)?;
        let boxes =
            Array3::from_shape_vec((n, self.options.crops.per_image, 4), self.boxes.clone())
                .map_err(shape_err)?;
        w.put(&attribution::SHAPLEY, maps.view())?;
        w.put(
            &attribution::SOURCE_INDEX,
            Array1::from(self.source_index.clone()).view(),
        )?;
        w.put(&attribution::LABEL, Array1::from(self.label.clone()).view())?;
        w.put(&attribution::CROP_BOX, boxes.view())?;
        w.finish()
    }
}
