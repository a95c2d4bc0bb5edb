//! A dataset builder's run end to end, in both modes: a LAION-style Parquet list (the URL
//! under `URL`, a caption, a key) in, a folder and a Parquet manifest a loader reads out,
//! every row's columns carried untouched; a CSV list with a broken row, whose row fails
//! alone; a JSON Lines list whose columns reach the JSONL manifest.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::helpers::{TestServer, jpeg, read_report, run_binary};

const MODES: [&str; 2] = ["sync", "async"];

fn server() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.route(
            "/img/{n}.jpg",
            web::get().to(|n: web::Path<u8>| async move {
                HttpResponse::Ok().content_type("image/jpeg").body(jpeg(*n, 1_000 + usize::from(*n)))
            }),
        );
    })
}

fn laion_list(path: &std::path::Path, origin: &str, n: i64) {
    let urls: Vec<String> = (0..n).map(|i| format!("{origin}/img/{i}.jpg")).collect();
    let captions: Vec<String> = (0..n).map(|i| format!("a cat, number {i}")).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("URL", Arc::new(StringArray::from(urls))),
        ("TEXT", Arc::new(StringArray::from(captions))),
        ("key", Arc::new(Int64Array::from((0..n).map(|i| 1000 + i).collect::<Vec<_>>()))),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_parquet_list_gives_a_folder_and_a_parquet_manifest_with_its_columns() {
    const N: i64 = 40;
    let server = server();
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        laion_list(&dir.path().join("laion-sample.parquet"), &server.origin(), N);
        let args = [
            "-m",
            mode,
            "--urls",
            "laion-sample.parquet",
            "--url-column",
            "URL",
            "-o",
            "out",
            "--report",
            "out/manifest.parquet",
        ];
        let run = run_binary(dir.path(), &args);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        run.assert_line(&format!("Done, success: {N}/{N}, failure: 0/{N}"));
        let file = std::fs::File::open(dir.path().join("out/manifest.parquet")).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        let mut rows = 0;
        for batch in reader {
            let batch = batch.unwrap();
            let text =
                batch.column_by_name("TEXT").expect("the caption is carried").as_string::<i32>().clone();
            let key =
                batch.column_by_name("key").expect("the key is carried").as_primitive::<Int64Type>().clone();
            let url = batch.column_by_name("url").unwrap().as_string::<i32>().clone();
            let path = batch.column_by_name("path").unwrap().as_string::<i32>().clone();
            let status = batch.column_by_name("status").unwrap().as_string::<i32>().clone();
            let bytes = batch.column_by_name("bytes").unwrap().as_primitive::<UInt64Type>().clone();
            let sha256 = batch.column_by_name("sha256").unwrap().as_string::<i32>().clone();
            for r in 0..batch.num_rows() {
                let i: i64 =
                    url.value(r).rsplit('/').next().unwrap().trim_end_matches(".jpg").parse().unwrap();
                assert_eq!(text.value(r), format!("a cat, number {i}"), "{mode}: the row's own caption");
                assert_eq!(key.value(r), 1000 + i, "{mode}: the key keeps its type");
                assert_eq!(status.value(r), "ok", "{mode}");
                let stored = std::fs::read(dir.path().join("out").join(path.value(r))).unwrap();
                assert_eq!(stored, jpeg(i as u8, 1_000 + i as usize), "{mode}: bytes as served");
                assert_eq!(bytes.value(r), stored.len() as u64, "{mode}");
                assert_eq!(sha256.value(r).len(), 64, "{mode}");
                rows += 1;
            }
        }
        assert_eq!(rows, N, "{mode}: a row per URL");
        assert!(!dir.path().join("out/manifest.parquet.part").exists(), "{mode}");
    }
}

#[test]
fn a_csv_lists_broken_row_fails_alone_and_jsonl_columns_reach_the_manifest() {
    let server = server();
    let origin = server.origin();
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let csv = format!(
            "url,caption\n{origin}/img/1.jpg,\"one, the first\"\nnot a url,broken\n{origin}/img/2.jpg,two\n"
        );
        std::fs::write(dir.path().join("list.csv"), csv).unwrap();
        let run =
            run_binary(dir.path(), &["-m", mode, "--urls", "list.csv", "-o", "out", "--report", "r.json"]);
        assert_eq!(run.code, 1, "{mode}: one row failed: {}", run.stderr);
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!((&report["images"]["ok"], &report["images"]["failed"]), (&2.into(), &1.into()), "{mode}");
        let items = report["items"].as_array().unwrap();
        let broken = items.iter().find(|i| i["status"] == "failed").unwrap();
        assert_eq!(broken["url"], "not a url", "{mode}");
        assert_eq!(broken["caption"], "broken", "{mode}: a failed row keeps its columns");
        assert!(broken["error"].as_str().unwrap().starts_with("list.csv:3: "), "{mode}: {broken}");
        let first = items.iter().find(|i| i["url"].as_str().unwrap().ends_with("/1.jpg")).unwrap();
        assert_eq!(first["caption"], "one, the first", "{mode}");

        let jsonl = format!(
            "{{\"url\": \"{origin}/img/3.jpg\", \"caption\": \"three\", \"nsfw\": false, \"score\": 0.5}}\n"
        );
        std::fs::write(dir.path().join("list.jsonl"), jsonl).unwrap();
        let run =
            run_binary(dir.path(), &["-m", mode, "--urls", "list.jsonl", "-o", "out", "--report", "m.jsonl"]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let line: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(dir.path().join("m.jsonl")).unwrap().trim())
                .unwrap();
        assert_eq!(
            (&line["caption"], &line["nsfw"], &line["score"]),
            (&"three".into(), &false.into(), &0.5.into())
        );
        assert_eq!(
            (&line["width"], &line["status"]),
            (&serde_json::Value::Null, &"ok".into()),
            "{mode}: {line}"
        );
    }
}

/// Files shipped elsewhere as the run goes (half of them moved out of the out dir):
/// with `--archive` the record alone says what is done and nothing is fetched again;
/// without it, what is gone is fetched again, as a deleted file always was.
#[test]
fn with_archive_files_moved_away_are_not_fetched_again() {
    const N: usize = 20;
    let server = server();
    for mode in MODES {
        let dir = tempfile::tempdir().unwrap();
        let list: String = (0..N).map(|i| format!("{}/img/{i}.jpg\n", server.origin())).collect();
        std::fs::write(dir.path().join("list.txt"), list).unwrap();
        let args = ["-m", mode, "--urls", "list.txt", "-o", "out"];
        assert_eq!(run_binary(dir.path(), &args).code, 0, "{mode}");
        let shipped = dir.path().join("shipped");
        std::fs::create_dir(&shipped).unwrap();
        for i in (0..N).step_by(2) {
            std::fs::rename(dir.path().join(format!("out/{i}.jpg")), shipped.join(format!("{i}.jpg")))
                .unwrap();
        }
        let hits = || (0..N).map(|i| server.hits(&format!("/img/{i}.jpg"))).sum::<usize>();
        let before = hits();
        let run = run_binary(dir.path(), &[&args[..], &["--archive"]].concat());
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        assert_eq!(hits(), before, "{mode}: nothing the record holds is fetched again");
        run.assert_line(&format!("Done, success: {N}/{N}, failure: 0/{N}"));
        let run = run_binary(dir.path(), &args);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        assert_eq!(hits(), before + N / 2, "{mode}: without --archive, what is gone comes back");
    }
}
