//! Real database dumps for `benches/compare.sh`: starts a private PostgreSQL
//! and Redis on 127.0.0.1 (as the tests do), and writes one dump per day,
//! changing about `--pct` percent of the rows and keys between days.
//!
//! ```text
//! cargo run --release -p vault-tests --example make_dumps -- OUT_DIR [--days 2] [--pg-scale 10] [--redis-keys 300000] [--pct 2]
//! ```
//!
//! Writes `OUT_DIR/pgreal_day{N}.sql` (plain `pg_dump` of a pgbench database
//! whose filler column holds random text, as real tables do not compress
//! 100:1) and `OUT_DIR/rdbreal_day{N}.bin` (`dump.rdb` after `SAVE`).

use std::path::PathBuf;

use vault_tests::servers::{Postgres, Redis};

fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().expect("usage: make_dumps OUT_DIR [options]"));
    let (mut days, mut scale, mut keys, mut pct) = (2u32, 10u32, 300_000u64, 2.0f64);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--days" => days = v.parse().expect("--days N"),
            "--pg-scale" => scale = v.parse().expect("--pg-scale N"),
            "--redis-keys" => keys = v.parse().expect("--redis-keys N"),
            "--pct" => pct = v.parse().expect("--pct P"),
            other => panic!("unknown option {other}"),
        }
    }
    std::fs::create_dir_all(&out).expect("create the output directory");
    if scale > 0 {
        let pg = Postgres::start();
        pg.pgbench_init("shop", scale);
        pg.randomize_filler("shop");
        for day in 1..=days {
            if day > 1 {
                pg.change_rows("shop", pct, 2000 * scale);
            }
            pg.dump_to("shop", &out.join(format!("pgreal_day{day}.sql")));
            eprintln!("pg_dump day {day} written");
        }
    }
    if keys > 0 {
        let redis = Redis::start();
        redis.populate(keys, 120, 1);
        for day in 1..=days {
            if day > 1 {
                redis.change_keys(keys, pct, 120, u64::from(day));
            }
            redis.save_to(&out.join(format!("rdbreal_day{day}.bin")));
            eprintln!("redis dump day {day} written");
        }
    }
}
