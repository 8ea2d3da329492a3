//! Element symbols, for nuclide names such as `208Pb`.

const SYMBOLS: [&str; 119] = [
    "n", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
    "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
];

/// `208Pb` for (82, 126).
pub fn name(z: u32, n: u32) -> String {
    let symbol = SYMBOLS.get(z as usize).copied().unwrap_or("?");
    format!("{}{symbol}", z + n)
}

/// (Z, N) of a name such as `208Pb` or `16O` (symbol case-insensitive).
pub fn parse(text: &str) -> Result<(u32, u32), String> {
    let text = text.trim();
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let bad = || format!("expected a nuclide such as 208Pb, got {text:?}");
    let a: u32 = text[..digits].parse().map_err(|_| bad())?;
    let symbol = &text[digits..];
    let z = SYMBOLS
        .iter()
        .position(|s| *s == symbol)
        .or_else(|| SYMBOLS.iter().position(|s| s.eq_ignore_ascii_case(symbol)))
        .ok_or_else(bad)? as u32;
    if z == 0 || a < z {
        return Err(bad());
    }
    Ok((z, a - z))
}
