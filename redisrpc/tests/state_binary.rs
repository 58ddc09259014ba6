//! Binary values beside documents, on both backends: arrays of every
//! dtype, their life cycle with the document, and a custom marshaller.

mod common;

use redisrpc::backend::SharedBackend;
use redisrpc::state::binary::{Bytes, Fields};
use redisrpc::state::{Dtype, Element, Marshaller, NdArray, State, ValueType};
use serde_json::json;

async fn round_trip<T: Element + PartialEq + std::fmt::Debug>(
    state: &State,
    path: &str,
    shape: Vec<usize>,
    elements: &[T],
) {
    let array = NdArray::from_elements(shape.clone(), elements).unwrap();
    state.set_array(path, &array).await.unwrap();
    let back = state.get_array(path).await.unwrap();
    assert_eq!(back.dtype(), T::DTYPE);
    assert_eq!(back.shape(), &shape[..]);
    assert_eq!(back.bytes(), array.bytes());
    assert_eq!(back.to_vec::<T>().unwrap(), elements);
}

/// A sensor reading stored as two hash fields.
#[derive(Debug)]
struct Reading {
    unit: String,
    samples: Vec<u16>,
}

struct ReadingMarshaller;

impl Marshaller for ReadingMarshaller {
    type Value = Reading;

    fn label(&self) -> &str {
        "reading-v1"
    }

    fn write(&self, reading: &Reading) -> Result<Fields, redisrpc::BoxError> {
        let samples: Vec<u8> = reading.samples.iter().flat_map(|s| s.to_be_bytes()).collect();
        Ok(vec![
            ("unit".into(), reading.unit.clone().into()),
            ("samples".into(), samples.into()),
        ])
    }

    fn read(&self, fields: Fields) -> Result<Reading, redisrpc::BoxError> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or(format!("no {name}"))
        };
        let samples = field("samples")?
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        Ok(Reading {
            unit: String::from_utf8(field("unit")?.to_vec())?,
            samples,
        })
    }
}

common::backend_tests! {
    async fn arrays_of_every_dtype_round_trip(backend: SharedBackend) {
        let state = State::new(backend);
        let frame: Vec<u8> = (0..480 * 640 * 3).map(|i| (i % 251) as u8).collect();
        round_trip(&state, "robot.camera.frame", vec![480, 640, 3], &frame).await;
        round_trip(&state, "robot.ticks", vec![4], &[i32::MIN, -1, 0, i32::MAX]).await;
        round_trip(&state, "robot.stamps", vec![2, 2], &[i64::MIN, 0, 1, i64::MAX]).await;
        round_trip(&state, "robot.cloud", vec![2, 3], &[0.1f32, -0.0, f32::MAX, f32::MIN_POSITIVE, 1e-45, 3.0]).await;
        round_trip(&state, "robot.history", vec![3, 1], &[0.1f64, -0.0, 1e-300]).await;
        round_trip(&state, "robot.scalar", vec![], &[42.5f64]).await;
        round_trip(&state, "robot.empty", vec![0, 3], &[] as &[f32]).await;
        assert_eq!(state.type_of("robot.cloud").await.unwrap(), ValueType::Binary("ndarray".into()));
        // The document holds markers, the arrays do not pass through JSON.
        let marker = state.get_value("robot.camera.frame").await.unwrap();
        assert_eq!(marker, json!({"$binary": {"label": "ndarray", "key": "__state__:{robot}.camera.frame"}}));
    }

    async fn arrays_live_and_die_with_their_document(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend.clone());
        let a = NdArray::from_elements(vec![2], &[1.0f32, 2.0]).unwrap();
        let b = NdArray::from_elements(vec![3], &[7u8, 8, 9]).unwrap();
        state.set("robot.arm.name", &"left").await?;
        state.set_array("robot.arm.frame", &a).await?;
        assert_eq!(backend.hash_get_all("__state__:{robot}.arm.frame").await?.len(), 3);
        // Replacing it replaces the hash.
        state.set_array("robot.arm.frame", &b).await?;
        assert_eq!(state.get_array("robot.arm.frame").await?, b);
        // Setting JSON over an ancestor deletes the hash with the marker.
        state.set("robot.arm", &json!({"name": "right"})).await?;
        assert!(backend.hash_get_all("__state__:{robot}.arm.frame").await?.is_empty());
        assert!(state.get_array("robot.arm.frame").await.unwrap_err().is_not_found());
        // So does deleting the document.
        state.set_array("robot.arm.frame", &a).await?;
        assert!(state.delete("robot").await?);
        assert!(backend.hash_get_all("__state__:{robot}.arm.frame").await?.is_empty());

        // Arrays in an array keep their own hashes when elements move.
        state.set("cams", &json!({"frames": [0, 0]})).await?;
        state.set_array("cams.frames[0]", &a).await?;
        state.set_array("cams.frames[1]", &b).await?;
        assert!(state.delete("cams.frames[0]").await?);
        assert_eq!(state.get_array("cams.frames[0]").await?, b);
        state.append("cams.frames", &0).await?;
        // Its natural key, `__state__:{cams}.frames[1]`, is still used by element 0.
        state.set_array("cams.frames[1]", &a).await?;
        state.append("cams.frames", &0).await?;
        state.set_array("cams.frames[2]", &b).await?;
        assert_eq!(state.get_array("cams.frames[0]").await?, b);
        assert_eq!(state.get_array("cams.frames[1]").await?, a);
        assert_eq!(state.get_array("cams.frames[2]").await?, b);
        // An array as a whole document.
        state.set_array("frame", &a).await?;
        assert_eq!(state.get_array("frame").await?, a);
        assert_eq!(state.type_of("frame").await?, ValueType::Binary("ndarray".into()));
        Ok(())
    }

    async fn binary_errors_are_clear(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        state.set("robot.pose", &json!([1, 2])).await?;
        let error = state.get_array("robot.pose").await.unwrap_err();
        assert_eq!(error.to_string(), "wrong type at `robot.pose`: expected binary value (ndarray), found array");
        assert!(state.get_array("robot.none").await.unwrap_err().is_not_found());
        let a = NdArray::from_elements(vec![1], &[1u8]).unwrap();
        state.set_array("robot.a", &a).await?;
        assert!(state.get_binary("robot.a", &ReadingMarshaller).await.unwrap_err().is_wrong_type());
        // Paths through a binary value do not exist.
        assert!(state.set("robot.a.x", &1).await.unwrap_err().is_wrong_type());
        assert_eq!(state.get_array("robot.a").await?, a);
        assert_eq!(NdArray::from_bytes(Dtype::F64, vec![2], vec![0; 15]).unwrap_err().to_string(), "shape (2,) of float64 needs 2 × 8 bytes, got 15");
        Ok(())
    }

    async fn a_custom_marshaller_stores_its_own_fields(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend.clone());
        let reading = Reading { unit: "mV".into(), samples: vec![1, 65535, 300] };
        state.set_binary("sensors.battery", &ReadingMarshaller, &reading).await?;
        let back = state.get_binary("sensors.battery", &ReadingMarshaller).await?;
        assert_eq!((back.unit.as_str(), back.samples.as_slice()), ("mV", &[1u16, 65535, 300][..]));
        assert_eq!(state.type_of("sensors.battery").await?, ValueType::Binary("reading-v1".into()));
        let mut fields = backend.hash_get_all("__state__:{sensors}.battery").await?;
        fields.sort();
        assert_eq!(
            fields,
            vec![("samples".into(), Bytes::from_static(&[0, 1, 255, 255, 1, 44])), ("unit".into(), Bytes::from_static(b"mV"))]
        );
        assert!(state.get_array("sensors.battery").await.unwrap_err().is_wrong_type());
        assert!(state.delete("sensors.battery").await?);
        assert!(backend.hash_get_all("__state__:{sensors}.battery").await?.is_empty());
        Ok(())
    }

    async fn only_a_document_s_own_binary_hashes_die_with_it(backend: SharedBackend) -> anyhow::Result<()> {
        let state = State::new(backend);
        let frame = NdArray::from_elements(vec![2, 2], &[1u8, 2, 3, 4]).unwrap();
        state.set_array("robot.frame", &frame).await?;
        state.set("victim", &json!({"n": 1})).await?;
        // A marker copied into another document, and one written by hand
        // naming another document's key.
        let marker = state.get_value("robot.frame").await?;
        state.set("backup.frame", &marker).await?;
        state.set("rogue.x", &json!({"$binary": {"label": "ndarray", "key": "victim"}})).await?;
        state.delete("backup").await?;
        state.delete("rogue").await?;
        assert_eq!(state.get_array("robot.frame").await?, frame);
        assert_eq!(state.get_value("victim").await?, json!({"n": 1}));
        // A copy within one document keeps the hash while either refers to it.
        state.set("robot.copy", &marker).await?;
        state.delete("robot.frame").await?;
        assert_eq!(state.get_array("robot.copy").await?, frame);
        state.delete("robot.copy").await?;
        assert!(state.backend().hash_get_all("__state__:{robot}.frame").await?.is_empty(), "the last reference took it");
        Ok(())
    }
}
