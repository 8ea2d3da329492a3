//! `Auto` with the CPU alone: the cost model's decisions and the environment it reads.

mod cost;
mod env;
