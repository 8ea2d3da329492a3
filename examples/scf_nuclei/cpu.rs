//! The CPU runner: the steps of `steps/` in parallel over nuclei (rayon), the eigh on the
//! crate's CPU backend (its own worker threads, one per core), the convergence scalar by the
//! crate's `Reducer` (`ReduceOp::MaxAbsDiff`). Every array is allocated here, once; the
//! iteration loop allocates nothing of its own (rayon's scheduler may, see
//! docs/architecture.md).

use megabatch::backends::cpu::Cpu;
use megabatch::{BatchedEigh, EighSpec, Error, ReduceOp, ReduceSpec, Reducer};

use crate::runner::{Problem, Results, Runner};
use crate::steps::{bcs, coulomb, densities, energy, fields, hamiltonian, mixing, woods_saxon};
use crate::steps::{Densities, Fields};

pub struct CpuRunner {
    p: Problem,
    cpu: Cpu,
    eigh_plan: <Cpu as BatchedEigh<f64>>::EighPlan,
    reduce_plan: <Cpu as Reducer<f64>>::ReducePlan,
    fields: Fields,
    v_coul: Vec<f64>,
    h: Vec<f64>,
    energies: Vec<f64>,
    vecs: Vec<f64>,
    v2: Vec<f64>,
    delta: Vec<f64>,
    lambda: Vec<f64>,
    /// Densities of the last eigenvectors (unmixed).
    new: Densities,
    /// Mixed densities: the input of the next fields.
    mixed: Densities,
    scalar: Vec<f64>,
}

impl CpuRunner {
    pub fn new(p: Problem) -> Result<Self, Error> {
        let cpu = Cpu::new()?;
        let lay = &p.layout;
        let spec = EighSpec::ragged(lay.block_sizes()).with_vectors(true);
        let eigh_plan = cpu.plan_eigh(&spec)?;
        let reduce_plan = cpu.plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::MaxAbsDiff,
            len: lay.grid_len(),
        })?;
        let n = lay.grid_len();
        Ok(Self {
            cpu,
            eigh_plan,
            reduce_plan,
            fields: Fields::zeros(n),
            v_coul: vec![0.0; lay.nuclei_count() * lay.grid()],
            h: vec![0.0; lay.h_len],
            energies: vec![0.0; lay.states],
            vecs: vec![0.0; lay.h_len],
            v2: vec![0.0; lay.states],
            delta: vec![0.0; 2 * lay.nuclei_count()],
            lambda: vec![0.0; 2 * lay.nuclei_count()],
            new: Densities::zeros(n),
            mixed: Densities::zeros(n),
            scalar: vec![0.0],
            p,
        })
    }

    pub fn boxed(p: Problem) -> Result<Box<dyn Runner>, Error> {
        Ok(Box::new(Self::new(p)?))
    }
}

impl Runner for CpuRunner {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn start_fields(&mut self) -> Result<(), Error> {
        woods_saxon::start_fields(&self.p.layout, &self.p.tables, &mut self.fields);
        Ok(())
    }

    fn build_fields(&mut self) -> Result<(), Error> {
        let (lay, tab, c) = (&self.p.layout, &self.p.tables, &self.p.coefficients);
        coulomb::potential(lay, tab, &self.mixed.rho, c.e2, &mut self.v_coul);
        fields::compute(c, lay, tab, &self.mixed, &self.v_coul, &mut self.fields);
        Ok(())
    }

    fn build_hamiltonian(&mut self) -> Result<(), Error> {
        hamiltonian::build(&self.p.layout, &self.p.tables, &self.fields, &mut self.h);
        Ok(())
    }

    fn eigh(&mut self) -> Result<(), Error> {
        self.cpu.eigh_host(
            &mut self.eigh_plan,
            &self.h,
            &mut self.energies,
            Some(&mut self.vecs),
        )
    }

    fn bcs(&mut self) -> Result<(), Error> {
        bcs::occupations(
            &self.p.layout,
            self.p.pairing,
            &self.energies,
            &mut self.v2,
            &mut self.delta,
            &mut self.lambda,
        );
        Ok(())
    }

    fn densities(&mut self) -> Result<(), Error> {
        densities::compute(
            &self.p.layout,
            &self.p.tables,
            &self.vecs,
            &self.v2,
            &mut self.new,
        );
        Ok(())
    }

    fn mix(&mut self, first: bool) -> Result<f64, Error> {
        if first {
            self.mixed.copy_from(&self.new);
            return Ok(f64::INFINITY);
        }
        self.cpu.reduce_host(
            &mut self.reduce_plan,
            &self.new.rho,
            Some(&self.mixed.rho),
            &mut self.scalar,
        )?;
        mixing::mix(&mut self.mixed, &self.new, self.p.mixing);
        Ok(self.scalar[0])
    }

    fn results(&mut self) -> Result<Results, Error> {
        let (lay, tab, c) = (&self.p.layout, &self.p.tables, &self.p.coefficients);
        coulomb::potential(lay, tab, &self.new.rho, c.e2, &mut self.v_coul);
        let energy = energy::per_nucleus(
            c,
            lay,
            tab,
            &self.new,
            &self.v_coul,
            &self.delta,
            self.p.pairing.g0,
        );
        Ok(Results {
            energies: self.energies.clone(),
            v2: self.v2.clone(),
            delta: self.delta.clone(),
            lambda: self.lambda.clone(),
            energy,
            rho: self.new.rho.clone(),
        })
    }
}
