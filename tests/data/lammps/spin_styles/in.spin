units metal
atom_style spin
atom_modify map array
boundary p p p
lattice bcc 2.8665
region box block 0 2 0 2 0 2
create_box 1 box
create_atoms 1 box
mass 1 55.845
set group all spin/atom 2.2 0.0 0.0 1.0
velocity all create 100 4928459 rot yes dist gaussian
pair_style hybrid/overlay eam/fs spin/exchange 3.5
pair_coeff * * eam/fs /work/shared/data/eam/Fe_mm.eam.fs Fe
pair_coeff * * spin/exchange exchange 3.4 0.02726 0.2171 1.841
neighbor 0.1 bin
fix 1 all precession/spin zeeman 1.0 0.0 0.0 1.0
fix 2 all langevin/spin 0.0 0.0 21
fix 3 all nve/spin lattice moving
timestep 0.0001
compute out_mag all spin
compute out_pe all pe
compute out_ke all ke
variable magnorm equal c_out_mag[4]
variable emag equal c_out_mag[5]
compute outsp all property/atom sp spx spy spz fmx fmy fmz
thermo_style custom step time v_magnorm pe ke v_emag temp etotal
thermo 5
dump 1 all custom 5 dump.lammpstrj id type x y z vx vy vz c_outsp[1] c_outsp[2] c_outsp[3] c_outsp[4] c_outsp[5] c_outsp[6] c_outsp[7]
run 10
thermo_style multi
run 10
thermo_style yaml
run 10
thermo_style custom step pe ke
thermo_modify norm yes
run 10
