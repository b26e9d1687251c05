// Running troupe for a team, on the settings page: members and invitations, keys, the audit log
// (admins), and every user's own sessions and password. Also the page an invitation link opens.

import { state, api, P, h, errorBox, guard, table, when, confirmDialog, render } from '/assets/lib.js';

const ROLES = ['viewer', 'member', 'admin'];
const SCOPES = [['read', 'read: data and saved insights'], ['query', 'query: also asks questions'], ['admin', 'admin: everything']];

/** The admin sections: members, keys, audit log. */
export async function adminSections(body, project) {
  const members = h('section.card', { id: 'members' });
  const keys = h('section.card', { id: 'keys' });
  const audit = h('section.card', { id: 'audit' });
  body.append(h('h2', {}, 'Members'), members, h('h2', {}, 'Keys'), keys, h('h2', {}, 'Audit log'), audit);
  await guard(members, () => membersSection(members));
  await guard(keys, () => keysSection(keys, project));
  await guard(audit, () => auditSection(audit));
}

async function membersSection(box) {
  const list = await api('GET', `${P()}/members`);
  const msg = h('div');
  const rows = list.members.map((m) => {
    const role = h('select', { 'aria-label': `Role of ${m.email}`, disabled: m.instance_admin || m.email === state.email },
      ROLES.map((r) => h('option', { value: r, selected: r === m.role }, r)));
    role.onchange = async () => {
      try {
        await api('PUT', `${P()}/members/${encodeURIComponent(m.email)}`, { role: role.value });
        msg.replaceChildren(h('p.small', {}, `${m.email} is now ${role.value}.`));
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    const remove = m.instance_admin || m.email === state.email ? '' : h('button.danger', {
      onclick: async () => {
        const ok = await confirmDialog(`Remove ${m.email}?`, 'They lose access to this project at once (and are signed out if it was their only one).', [{ label: 'Remove', value: true, danger: true }]);
        if (!ok) return;
        try { await api('DELETE', `${P()}/members/${encodeURIComponent(m.email)}`); box.replaceChildren(); await membersSection(box); } catch (e) { msg.replaceChildren(errorBox(e)); }
      },
    }, 'Remove');
    return h('tr', { 'data-member': m.email }, h('td', {}, m.email), h('td', {}, role, m.instance_admin ? h('span.muted.small', {}, ' instance administrator') : ''), h('td', {}, remove));
  });
  const invites = list.invites.map((i) => h('tr', { 'data-invite': i.email }, h('td', {}, i.email), h('td', {}, `${i.role} (invited)`),
    h('td', {}, h('span.muted.small', {}, `expires ${when(i.expires_at)} `), h('button', {
      onclick: async () => { try { await api('DELETE', `${P()}/invites/${encodeURIComponent(i.id)}`); box.replaceChildren(); await membersSection(box); } catch (e) { msg.replaceChildren(errorBox(e)); } },
    }, 'Cancel'))));
  const email = h('input', { type: 'email', required: true, placeholder: 'name@company.com', 'aria-label': 'Email to invite' });
  const role = h('select', { 'aria-label': 'Role to invite with' }, ROLES.map((r) => h('option', { value: r, selected: r === 'member' }, r)));
  const form = h('form.toolbar', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await api('POST', `${P()}/members`, { email: email.value, role: role.value });
        box.replaceChildren();
        await membersSection(box);
        if (r.added) {
          box.prepend(h('p.small', {}, `${r.email} had an account: they are now ${r.role} here.`));
        } else {
          const url = `${location.origin}${r.invite.path}`;
          box.prepend(h('div.notice', { id: 'invite-link' }, h('p.small', {}, `Send this link to ${r.email} (it works once, for 7 days, and is shown only now):`), h('pre.key', {}, url)));
        }
      } catch (ex) { msg.replaceChildren(errorBox(ex)); }
    },
  }, email, role, h('button.primary', { type: 'submit' }, 'Invite'));
  box.append(table(['Email', 'Role', ''], [...rows, ...invites]), form, msg,
    h('p.muted.small', {}, 'viewer: reads and asks questions · member: also makes insights, dashboards, cohorts and edits groups · admin: also keys, settings, members and erasures'));
}

async function keysSection(box, project) {
  const keys = await api('GET', `${P()}/keys`);
  const msg = h('div');
  const overlap = h('input.num', { type: 'number', min: 0, max: 2160, step: 'any', value: 168, 'aria-label': 'Overlap hours' });
  const ingestion = keys.ingestion.map((k) => h('tr', { 'data-ingestion-key': k.key }, h('td', {}, h('code.key', {}, k.key)),
    h('td', {}, k.current ? 'current' : `works until ${when(k.retires_at)}`),
    h('td', {}, k.current ? '' : h('button', {
      onclick: async () => { try { await api('DELETE', `${P()}/ingestion-keys/${encodeURIComponent(k.key)}`); await redraw(); } catch (e) { msg.replaceChildren(errorBox(e)); } },
    }, 'Retire now'))));
  const rotate = h('form.toolbar', {
    onsubmit: async (e) => {
      e.preventDefault();
      const ok = await confirmDialog('Rotate the ingestion key?', `A new key is made; the current one keeps working for ${overlap.value} hours while your clients are redeployed with the new one.`, [{ label: 'Rotate', value: true }]);
      if (!ok) return;
      try {
        const r = await api('POST', `${P()}/ingestion-keys/rotate`, { overlap_hours: Number(overlap.value) });
        project.ingestion_key = r.key;
        document.querySelectorAll('[data-current-ingestion-key]').forEach((el) => { el.textContent = r.key; });
        await redraw();
      } catch (ex) { msg.replaceChildren(errorBox(ex)); }
    },
  }, h('label.inline', {}, 'Old key keeps working for ', overlap, ' hours'), h('button', { type: 'submit' }, 'Rotate ingestion key…'));
  const secrets = keys.secret.map((k) => h('tr', { 'data-secret-key': k.name }, h('td', {}, k.name), h('td', {}, k.scope), h('td', {}, h('code', {}, k.hint)),
    h('td', {}, k.expires_at ? `${k.expired ? 'expired' : 'expires'} ${when(k.expires_at)}` : 'never expires'), h('td.muted.small', {}, k.created_by),
    h('td', {}, h('button.danger', {
      onclick: async () => {
        const ok = await confirmDialog(`Revoke the key ${k.name}?`, 'Scripts using it are refused at once.', [{ label: 'Revoke', value: true, danger: true }]);
        if (!ok) return;
        try { await api('DELETE', `${P()}/keys/${encodeURIComponent(k.id)}`); await redraw(); } catch (e) { msg.replaceChildren(errorBox(e)); }
      },
    }, 'Revoke'))));
  const name = h('input', { required: true, placeholder: 'e.g. metabase', 'aria-label': 'Key name' });
  const scope = h('select', { 'aria-label': 'Key scope' }, SCOPES.map(([v, t]) => h('option', { value: v }, t)));
  const days = h('input.num', { type: 'number', min: 1, max: 3650, placeholder: 'never', 'aria-label': 'Expires in days' });
  const create = h('form.toolbar', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const body = { name: name.value, scope: scope.value };
        if (days.value) body.expires_in_days = Number(days.value);
        const k = await api('POST', `${P()}/keys`, body);
        await redraw();
        box.prepend(h('div.notice', { id: 'new-secret' }, h('p.small', {}, `The secret key ${k.name} (${k.scope}), shown only now: copy it.`), h('pre.key', { 'data-secret': k.name }, k.secret)));
      } catch (ex) { msg.replaceChildren(errorBox(ex)); }
    },
  }, name, scope, h('label.inline', {}, 'expires in ', days, ' days'), h('button.primary', { type: 'submit' }, 'Create secret key'));
  box.append(h('h3.small', {}, 'Ingestion keys (public, write-only)'), table(['Key', 'State', ''], ingestion), rotate,
    h('h3.small', {}, 'Secret keys (read the API; stored hashed)'), table(['Name', 'Scope', 'Starts with', 'Expiry', 'Created by', ''], secrets), create, msg);
  async function redraw() { box.replaceChildren(); await keysSection(box, project); }
}

async function auditSection(box, before) {
  const q = new URLSearchParams({ limit: '50' });
  if (before) q.set('before', before);
  const page = await api('GET', `${P()}/audit?${q}`);
  const rows = page.results.map((e) => h('tr', { 'data-audit': e.action }, h('td.nowrap', { title: e.at }, when(e.at)), h('td', {}, e.actor), h('td', {}, e.action), h('td', {}, e.target),
    h('td.small.muted', {}, Object.keys(e.details || {}).length ? JSON.stringify(e.details).slice(0, 160) : '')));
  box.append(page.results.length ? table(['When', 'Who', 'Action', 'On', 'Details'], rows) : h('p.empty', {}, 'Nothing yet.'));
  if (page.next_before) box.append(h('button', { onclick: (e) => { e.target.remove(); guard(box, () => auditSection(box, page.next_before)); } }, 'Older…'));
}

/** Everyone's own: their sessions (revocable) and their password. */
export async function accountSection(body) {
  const box = h('section.card', { id: 'sessions' });
  body.append(h('h2', {}, 'Your account'), box);
  await guard(box, () => sessionsSection(box));
}

async function sessionsSection(box) {
  const list = await api('GET', '/api/sessions');
  const msg = h('div');
  const rows = list.results.map((s) => h('tr', { 'data-session': s.id }, h('td', {}, s.current ? 'this browser' : (s.user_agent || 'unknown').slice(0, 60)), h('td', {}, s.ip || ''),
    h('td.nowrap', { title: s.created_at || '' }, s.created_at ? when(s.created_at) : ''), h('td.nowrap', {}, when(s.expires_at)),
    h('td', {}, s.current ? '' : h('button', {
      onclick: async () => { try { await api('DELETE', `/api/sessions/${encodeURIComponent(s.id)}`); box.replaceChildren(); await sessionsSection(box); } catch (e) { msg.replaceChildren(errorBox(e)); } },
    }, 'Sign out'))));
  const current = h('input', { type: 'password', required: true, autocomplete: 'current-password', placeholder: 'current password', 'aria-label': 'Current password' });
  const next = h('input', { type: 'password', required: true, minlength: 8, autocomplete: 'new-password', placeholder: 'new password (8+ characters)', 'aria-label': 'New password' });
  const form = h('form.toolbar', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('POST', '/api/password', { current_password: current.value, new_password: next.value });
        box.replaceChildren();
        await sessionsSection(box);
        box.prepend(h('p.small', {}, 'Password changed; your other sessions were signed out.'));
      } catch (ex) { msg.replaceChildren(errorBox(ex)); }
    },
  }, current, next, h('button', { type: 'submit' }, 'Change password'));
  box.append(h('h3.small', {}, `Signed in as ${state.email} (${state.instanceAdmin ? 'instance administrator' : state.role || 'no role'})`),
    table(['Browser', 'Address', 'Signed in', 'Expires', ''], rows), form, msg);
}

/** `#/invite/<token>`: join a project with the role of the invitation. */
export async function invitePage(token, done) {
  document.getElementById('nav').hidden = true;
  const err = h('div');
  let invite;
  try {
    invite = await api('GET', `/api/invites/${encodeURIComponent(token)}`);
  } catch (e) {
    render(h('div.auth', {}, h('h1', {}, 'Invitation'), errorBox(e), h('p', {}, h('a', { href: '#/login' }, 'Sign in'))));
    return;
  }
  const password = h('input', { type: 'password', required: true, minlength: 8, autocomplete: invite.existing_account ? 'current-password' : 'new-password', 'aria-label': 'Password' });
  const form = h('form.auth', {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api('POST', `/api/invites/${encodeURIComponent(token)}/accept`, { password: password.value });
        await done();
      } catch (ex) { err.replaceChildren(errorBox(ex)); }
    },
  }, h('h1', {}, `Join ${invite.project}`),
  h('p.muted', {}, `${invite.email} is invited as ${invite.role}. ${invite.existing_account ? 'Enter your password to accept.' : 'Choose a password (at least 8 characters).'}`),
  h('label', {}, 'Password', password), err, h('button.primary', { type: 'submit' }, 'Join'));
  render(form);
}
