// rnnlm: look inside a character-level model. Reads the JSON in #rnnlm-data and
// draws the text coloured by one cell's activation, the per-character loss as a
// strip, and the model's top guesses on hover. Text is only ever set through
// textContent, never parsed as HTML.
(function () {
  'use strict';
  var errors = 0;
  window.addEventListener('error', function () {
    errors += 1;
    document.body.setAttribute('data-errors', String(errors));
  });
  var data = JSON.parse(document.getElementById('rnnlm-data').textContent);
  var text = data.text;
  var chars = Array.from(text);

  function show(ch) {  // Characters that would be invisible get a visible stand-in.
    if (ch === '\n') return '\u21b5\n';
    if (ch === ' ') return '\u00a0';
    if (ch === '\t') return '\u2192\u00a0\u00a0\u00a0';
    return ch;
  }
  function label(ch) {
    if (ch === '\n') return '\\n';
    if (ch === ' ') return 'space';
    if (ch === '\t') return '\\t';
    return ch;
  }
  // Activation in [-1, 1] -> red (positive) or blue (negative), as in the paper.
  function activationColour(v) {
    var a = Math.min(Math.abs(v), 1);
    return v >= 0 ? 'rgba(214, 39, 40, ' + a.toFixed(3) + ')'
                  : 'rgba(31, 119, 180, ' + a.toFixed(3) + ')';
  }
  function lossColour(nats) {
    var a = Math.min(nats / 5, 1);
    return 'rgba(0, 0, 0, ' + a.toFixed(3) + ')';
  }

  document.getElementById('title').textContent = data.title;
  document.getElementById('meta').textContent = data.meta;

  // The cell picker: top cells per feature, with their scores.
  var select = document.getElementById('cell');
  data.features.forEach(function (f) {
    var group = document.createElement('optgroup');
    group.label = f.name + ' (' + f.measure + '; random-init best ' + f.baseline + ')';
    f.cells.forEach(function (c) {
      var opt = document.createElement('option');
      opt.value = String(c.index);
      opt.textContent = c.cell + '  ' + f.measure + ' = ' + c.score;
      group.appendChild(opt);
    });
    select.appendChild(group);
  });

  var textBox = document.getElementById('text');
  var spans = chars.map(function (ch, i) {
    var s = document.createElement('span');
    s.textContent = show(ch);
    s.setAttribute('data-i', String(i));
    textBox.appendChild(s);
    return s;
  });
  var lossBox = document.getElementById('loss');
  chars.forEach(function (ch, i) {
    var s = document.createElement('span');
    s.textContent = '\u2588';
    var nats = i > 0 ? data.loss[i - 1] : 0;
    s.style.color = lossColour(nats);
    lossBox.appendChild(s);
  });

  function paint() {
    var cell = data.cells[Number(select.value)];
    if (!cell) return;
    var scale = 127;
    spans.forEach(function (s, i) {
      s.style.backgroundColor = activationColour(cell.values[i] / scale);
    });
    document.getElementById('cellinfo').textContent =
        cell.cell + ': activation from ' + cell.min + ' (blue) to ' + cell.max + ' (red)';
  }
  select.addEventListener('change', paint);

  var tip = document.getElementById('tip');
  textBox.addEventListener('mousemove', function (e) {
    var i = e.target.getAttribute && e.target.getAttribute('data-i');
    if (i === null || i === undefined) { tip.style.display = 'none'; return; }
    i = Number(i);
    while (tip.firstChild) tip.removeChild(tip.firstChild);
    var head = document.createElement('div');
    var nextCh = i + 1 < chars.length ? label(chars[i + 1]) : '(end)';
    head.textContent = 'after ' + JSON.stringify(label(chars[i])) + ': next is ' +
        JSON.stringify(nextCh) + (i + 1 < chars.length ?
        ', loss ' + data.loss[i].toFixed(2) + ' nats' : '');
    tip.appendChild(head);
    var table = document.createElement('table');
    table.className = 'top';
    data.top[i].forEach(function (pair) {
      var row = document.createElement('tr');
      var a = document.createElement('td');
      a.textContent = JSON.stringify(label(pair[0]));
      var b = document.createElement('td');
      b.textContent = (100 * pair[1]).toFixed(1) + '%';
      row.appendChild(a);
      row.appendChild(b);
      table.appendChild(row);
    });
    tip.appendChild(table);
    tip.style.left = (e.clientX + 14) + 'px';
    tip.style.top = (e.clientY + 14) + 'px';
    tip.style.display = 'block';
  });
  textBox.addEventListener('mouseleave', function () { tip.style.display = 'none'; });

  if (data.cells.length) {
    select.value = '0';
    paint();
  }
  document.body.setAttribute('data-ready', 'true');
})();
